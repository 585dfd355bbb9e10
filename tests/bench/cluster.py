"""Benchmark of cluster mode (ACMECluster, docs/cluster.md): three apache2 nodes, one engine
(memcached or redis-server), haproxy in front on the port pebble validates. Prints figures;
asserts nothing about speed.

    /usr/bin/python3 tests/bench/cluster.py [--runs 3] [--nodes 3] [--engines memcache,redis]
                                            [--activation graceful,live]

Per engine and activation, runs each starting every node at the same moment with an empty store:
  orders per certificate  newOrder requests pebble accepted / certificates served
  publish -> all serve    from the ordering node's publication (ACME04002, the order complete)
                          to the moment every node serves the new chain (polled every 10 ms)
  start -> all serve      from the simultaneous start to every node serving it
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import acmetest  # noqa: E402
import cluster  # noqa: E402
from chaosproxy import ChaosProxy  # noqa: E402

NAMES = ["bench.c.test", "www.bench.c.test"]


def one_run(workdir, kind, activation, nnodes, n):
    base = acmetest.public_dir(workdir, f"{kind}-{activation}-{n}")
    hport = acmetest.free_port()
    pb = acmetest.Pebble(os.path.join(base, "pebble"), http_port=hport)
    proxy = ChaosProxy(pb)
    engine = cluster.Engine(kind, base)
    nodes = []
    hap = None
    try:
        for k in range(nnodes):
            h = acmetest.Httpd(os.path.join(base, f"node{k + 1}"), pb)
            h.http_port, h.https_port = acmetest.free_ports(2)
            nodes.append(h)
        hap = cluster.Haproxy(base, hport, [h.http_port for h in nodes])
        shared = cluster.shared_folder(base)
        for k, h in enumerate(nodes, 1):
            cluster.node_conf(h, proxy.directory, pb.ca_file, engine, shared, k, NAMES, 60,
                              activation)
        t0 = time.time()
        cluster.start_all(nodes)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            serials = {cluster.served_serial(h, NAMES[0]) for h in nodes}
            if len(serials) == 1 and None not in serials:
                break
            time.sleep(0.01)
        else:
            raise RuntimeError("not every node serves a certificate:\n" +
                               "\n".join(h.log_text()[-2000:] for h in nodes))
        t_all = time.time()
        published = None
        for h in nodes:
            for line in h.log_text().splitlines():
                if "ACME04002" in line:
                    published = acmetest._log_time(line)
        orders = len(proxy.new_orders())
        return orders, (t_all - published) if published else float("nan"), t_all - t0
    finally:
        for h in nodes:
            h.stop()
        if hap:
            hap.stop()
        engine.stop()
        proxy.stop()
        pb.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--engines", default="memcache,redis")
    ap.add_argument("--activation", default="graceful,live")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="mod_acme-bench-cluster-")
    os.chmod(workdir, 0o755)
    print(f"cluster bench: {args.nodes} nodes, {args.runs} run(s) each, one certificate "
          f"({len(NAMES)} names) per run; figures are medians")
    print(f"{'engine':10} {'activation':10} {'orders/cert':>11} {'publish->all serve':>19} "
          f"{'start->all serve':>17}")
    for kind in args.engines.split(","):
        missing = cluster.missing_binaries(kind)
        if missing:
            print(f"{kind:10} skipped: {' and '.join(missing)} not installed")
            continue
        for activation in args.activation.split(","):
            res = [one_run(workdir, kind, activation, args.nodes, n) for n in range(args.runs)]
            orders = sum(r[0] for r in res) / len(res)
            pub = statistics.median(r[1] for r in res)
            start = statistics.median(r[2] for r in res)
            print(f"{kind:10} {activation:10} {orders:11.2f} {pub:18.2f}s {start:16.2f}s")


if __name__ == "__main__":
    main()
