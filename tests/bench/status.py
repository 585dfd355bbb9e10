"""Benchmark of the status handlers: requests/s of SetHandler acme-status (the whole document
and one certificate) and acme-metrics, beside a static file of the same size served by the same
server, with wrk (keep-alive). Prints figures and ratios; asserts nothing about speed.

    /usr/bin/python3 tests/bench/status.py [--domains 10] [--seconds 4] [--conns 10]

The server gets its certificates from pebble first (so the documents hold real sets), then each
URL is measured in turn. The handlers copy what the parent and the driver published in shared
memory: no store read, no lock, per request.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import acmetest  # noqa: E402
from bench import wrk  # noqa: E402

LOCATIONS = """<Location /acme-status>
    SetHandler acme-status
</Location>
<Location /acme-metrics>
    SetHandler acme-metrics
</Location>
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--conns", type=int, default=10)
    args = ap.parse_args()
    for tool in ("wrk", "pebble"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is not installed (apt-get install {tool})")
    work = tempfile.mkdtemp(prefix="mod_acme-bench-status-")
    os.chmod(work, 0o755)
    pebble = acmetest.Pebble(os.path.join(work, "pebble"),
                             env_extra={"PEBBLE_WFE_NONCEREJECT": "0"})
    h = acmetest.Httpd(os.path.join(work, "httpd"), pebble)
    try:
        names = [f"s{i}.bench.test" for i in range(args.domains)]
        h.write_conf("ACMEContactEmail admin@bench.test\nACMEAgreement accepted\n" + LOCATIONS +
                     "".join(f"ACMEDomain {n}\n" for n in names) +
                     "".join(h.ssl_vhost(n) for n in names))
        h.start()
        deadline = time.monotonic() + 120
        pending = list(names)
        while pending and time.monotonic() < deadline:
            pending = [n for n in pending
                       if "Pebble" not in acmetest.tls_peer_cert(h.https_port, n)
                       .issuer.rfc4514_string()]
            time.sleep(0.1)
        if pending:
            sys.exit(f"bench: no certificate for {pending} after 120 s; see {h.root}")
        h.settle()
        sizes = {}
        for path in ("/acme-status", f"/acme-status/{names[0]}", "/acme-metrics"):
            status, _, body = acmetest.http_get(h.http_port, "localhost", path)
            assert status == 200, (path, status, body)
            sizes[path] = len(body)
            # The same bytes as a static file: what the handler costs beyond sending them.
            with open(os.path.join(h.docroot, f"static{len(sizes)}.txt"), "wb") as f:
                f.write(body)
        print(f"== status handlers, {args.domains} certificates, wrk -t1 -c{args.conns} "
              f"-d{args.seconds}s, keep-alive, Debian apache2 event MPM")
        for k, (path, size) in enumerate(sizes.items(), 1):
            rate = wrk(h.http_port, "localhost", path, False, args.seconds, args.conns)
            static = wrk(h.http_port, "localhost", f"/static{k}.txt", False, args.seconds,
                         args.conns)
            print(f"   {path:32s} {size:6d} bytes: {rate:9.0f} req/s; static file of the same "
                  f"size {static:9.0f} req/s; ratio {rate / static:.2f}")
    finally:
        h.stop()
        pebble.stop()
        subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()
