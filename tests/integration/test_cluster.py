"""Cluster mode (ACMECluster, docs/cluster.md): three apache2 nodes with mod_acme, one engine
(Debian's memcached or redis-server) holding the order lease and the challenge answers, a shared
folder for the certificate, and haproxy in front of the nodes on the port pebble validates, round
robin, so that the CA's validation requests reach nodes that did not order. Asserted with the
orders pebble accepted (through the test proxy) and the chains the nodes serve."""
import os
import re
import time

import pytest

import acmetest
import cluster
from chaosproxy import ChaosProxy

# Three names: three validation requests, round robin over three nodes.
NAMES = ["c.test", "www.c.test", "shop.c.test"]


@pytest.fixture(params=["memcache", "redis"])
def kind(request):
    missing = cluster.missing_binaries(request.param)
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (scripts/install-deps installs them)")
    return request.param


@pytest.fixture
def make_cluster(workdir, httpd_factory, request, kind):
    """make_cluster(lease) -> (nodes, proxy, engine): three nodes configured, not started."""
    made = []

    def make(lease=60):
        tag = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
        base = acmetest.public_dir(workdir, f"cluster-{tag}")
        hport = acmetest.free_port()
        pb = acmetest.Pebble(os.path.join(base, "pebble"), http_port=hport)
        made.append(pb)
        proxy = ChaosProxy(pb)
        made.append(proxy)
        engine = cluster.Engine(kind, base)
        made.append(engine)
        nodes = [httpd_factory(ca=pb) for _ in range(3)]
        for h in nodes:
            h.http_port, h.https_port = acmetest.free_ports(2)
        made.append(cluster.Haproxy(base, hport, [h.http_port for h in nodes]))
        shared = cluster.shared_folder(base)
        for k, h in enumerate(nodes, 1):
            cluster.node_conf(h, proxy.directory, pb.ca_file, engine, shared, k, NAMES, lease)
            r = h.configtest()
            assert r.returncode == 0, r.stderr
        made.insert(0, nodes)
        return nodes, proxy, engine

    yield make
    # The nodes first: a node that loses its engine logs it.
    for item in made:
        if isinstance(item, list):
            for h in item:
                h.stop()
        else:
            item.stop()


def log_time(h, tag):
    """Wall-clock time of the first log line of h holding tag, or None."""
    for line in h.log_text().splitlines():
        if tag in line:
            return acmetest._log_time(line)
    return None


def challenge_hits(h):
    """Validation requests node h answered with 200."""
    try:
        with open(os.path.join(h.root, "access.log")) as f:
            return sum(1 for line in f if "/.well-known/acme-challenge/" in line and
                       re.search(r" HTTP/1\.1 200 ", line))
    except OSError:
        return 0


@pytest.mark.slow(60)
def test_one_order_every_node_serves(make_cluster):
    nodes, proxy, _ = make_cluster()
    cluster.start_all(nodes)
    serial, _ = cluster.wait_all_serve(nodes, NAMES[0], 60)
    assert len(proxy.new_orders()) == 1, proxy.new_orders()
    orderers = [h for h in nodes if "ACME04001" in h.log_text()]
    assert len(orderers) == 1, [h.root for h in orderers]
    others = [h for h in nodes if h is not orderers[0]]
    # The validation requests went round robin: nodes that did not order answered some, from
    # the challenge cache in the engine.
    assert sum(challenge_hits(h) for h in others) >= 1, [challenge_hits(h) for h in nodes]
    published = log_time(orderers[0], "ACME04002")
    assert published, orderers[0].log_text()[-3000:]
    for h in others:
        assert "ACME04013: c.test: imported" in h.log_text(), h.log_text()[-3000:]
        # Within one look at the shared folder (a second), with room for a loaded machine.
        assert log_time(h, "ACME04013") - published < 5, h.log_text()[-3000:]
        assert "ACME04003: c.test: no order from this node: node n" in h.log_text()
    # Each node serves it from its own store (staged, promoted by its parent).
    for h in nodes:
        assert os.path.islink(os.path.join(h.store, "domains", "c.test"))
    assert {cluster.served_serial(h, "www.c.test") for h in nodes} == {serial}


@pytest.mark.slow(90)
def test_holder_killed_mid_order(make_cluster):
    lease = 10
    nodes, proxy, _ = make_cluster(lease=lease)
    proxy.hold("/chalZ/")  # the holder's order waits at its challenge response
    cluster.start_all(nodes)
    assert proxy.wait_held(60), "\n".join(h.log_text()[-2000:] for h in nodes)
    first = acmetest.wait_until(lambda: cluster.holder(nodes), 10, "a node holding the lease")
    taken = log_time(first, "ACME04001")
    assert len(proxy.new_orders()) == 1
    cluster.kill_node(first)
    proxy.release()  # the dead node's request goes on; nobody finalizes its order
    rest = [h for h in nodes if h is not first]
    second_at = acmetest.wait_until(
        lambda: time.time() if len(proxy.new_orders()) >= 2 else None,
        lease + 60, lambda: "a second order\n" + "\n".join(h.log_text()[-2500:] for h in rest))
    # No second order while the dead node's lease was live: taken at `taken`, it lasts at least
    # `lease` seconds from there.
    assert second_at >= taken + lease - 0.2, (second_at - taken)
    cluster.wait_all_serve(rest, NAMES[0], 60)
    assert len(proxy.new_orders()) == 2
    second = [h for h in rest if "ACME04001" in h.log_text()]
    assert len(second) == 1


@pytest.mark.slow(90)
def test_engine_restarted_mid_order(make_cluster):
    lease = 15
    nodes, proxy, engine = make_cluster(lease=lease)
    for h in nodes:
        # While the engine is down: the lease cannot be renewed or taken, the answers cannot
        # be stored; each says so (and the socache provider too).
        h.allowed_errors = ["ACME04003", "ACME04015", "ACME04006", "socache_memcache:crit",
                            "socache_redis:crit"]
    proxy.hold("/chalZ/")
    cluster.start_all(nodes)
    assert proxy.wait_held(60), "\n".join(h.log_text()[-2000:] for h in nodes)
    first = acmetest.wait_until(lambda: cluster.holder(nodes), 10, "a node holding the lease")
    engine.restart()
    # The holder notices the lost keys and takes its lease back; its answers are stored again.
    assert first.wait_log("ACME04004", timeout=lease), first.log_text()[-3000:]
    acmetest.wait_until(lambda: re.search(r"ACME04014: c\.test: 3 ", first.log_text()), lease,
                        lambda: first.log_text()[-3000:])
    proxy.release()
    cluster.wait_all_serve(nodes, NAMES[0], 90)
    assert len(proxy.new_orders()) == 1, proxy.new_orders()
    finalized = [a for a in proxy.answered if a[0].startswith("/finalize-order/") and a[1] == 200]
    assert len(finalized) == 1, finalized
    assert [h for h in nodes if "ACME04001" in h.log_text()] == [first]
