"""Start -> issue -> stop cycles of Debian's apache2 with mod_acme against pebble, counting the
children httpd had to kill. Prints figures; asserts nothing about time (a loaded machine would
make that flaky).

    /usr/bin/python3 tests/bench/stopcycles.py [--cycles 200] [--stop-at served|issued|order]

Each cycle starts the server with an empty store, waits for the moment named by --stop-at and
stops it as `apache2 -k stop` does (SIGTERM to the parent), then waits until no process of it is
left:
  served  the new certificate is served (after the automatic graceful restart; the server is
          given a second to settle first, as httpd's children are not safe against SIGTERM
          while they start, see docs/apache.md)
  issued  the certificate was obtained (ACME01054), often while the restart is under way
  order   a worker is inside the issuance (ACME01062; pebble sleeps 0-5 s before each
          validation here, so the worker is usually still at it once the children have run a
          second), so the stop has to end its waits and abort its CA requests
httpd's event MPM starts a third child about a second after each start and restart (its default
MinSpareThreads 75 is more than StartServers 2 x 25 threads), and a child that gets SIGTERM while
it starts can deadlock in its signal handler (it frees memory while its main thread is inside
malloc) until httpd kills it: an httpd bug that has nothing to do with mod_acme. By default
(--spare steady) the server is configured so that no child is starting when it is stopped, and
the figure counts what mod_acme's driver child does; --spare default shows httpd's own race.
The figure is the number of AH00046 lines (httpd sent a child SIGKILL: it did not leave within
9 s), goal 0; AH00045 (still running after 3 s) and the time from the stop until the last
process left are printed beside it.
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import acmetest  # noqa: E402

ACCOUNT = "ACMEContactEmail admin@stop.test\nACMEAgreement accepted\n"
busy_misses = [0]


def dump_stacks(h, parent, path):
    with open(path, "w") as f:
        for p in h.processes():
            if p == parent:
                continue
            r = subprocess.run(["gdb", "-p", str(p), "-batch", "-ex", "thread apply all bt 20"],
                               capture_output=True, text=True, timeout=60)
            f.write(f"=== {p}\n{r.stdout}\n")
    print(f"stacks of the children still running 4 s after the stop: {path}", flush=True)


def one_cycle(h, n, stop_at, extra):
    store = os.path.join(h.root, f"acme-{n}")
    h.store = store
    h.write_conf(extra + ACCOUNT + "ACMEDomain stop.test\n" + h.ssl_vhost("stop.test"))
    before = h.log_text()
    h.start()
    tag = {"served": "ACME01020", "issued": "ACME01054", "order": "ACME01062"}[stop_at]
    want = before.count(tag) + 1
    if not h.wait_log(tag, timeout=60, count=want):
        print(f"cycle {n}: no {tag} within 60 s", flush=True)
    if stop_at != "served":
        h.settle()  # never SIGTERM a starting child (see above)
    else:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                c = acmetest.tls_peer_cert(h.https_port, "stop.test", timeout=2)
                if c.issuer != c.subject:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        h.settle()
    if stop_at == "order" and "ACME01054" in h.log_text()[len(before):]:
        busy_misses[0] += 1  # the issuance ended before the stop: not what this mode measures
    pid = h.pid()
    t0 = time.monotonic()
    if pid:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    dumped = False
    while time.monotonic() < deadline and h.processes():
        if not dumped and time.monotonic() - t0 > 4 and shutil.which("gdb"):
            dumped = True  # a child still there after 4 s: its stacks say why
            dump_stacks(h, pid, os.path.join(h.root, f"stuck-{n}.txt"))
        time.sleep(0.02)
    took = time.monotonic() - t0
    left = h.processes()
    for p in left:  # only ours, by PID, so that the next cycle can start
        os.kill(p, signal.SIGKILL)
    shutil.rmtree(store, ignore_errors=True)
    return took, bool(left)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--stop-at", choices=("served", "issued", "order"), default="served")
    ap.add_argument("--mpm", default="event")
    ap.add_argument("--spare", choices=("steady", "default"), default="steady",
                    help="steady: no child is started after the first ones (the test "
                    "harness's MinSpareThreads 25), default: httpd's, which starts a third child "
                    "a second later")
    args = ap.parse_args()
    # The test harness's configuration starts no child after the first ones; "default" puts
    # httpd's own spares back.
    extra = "" if args.spare == "steady" else (
        "MinSpareServers 5\nMaxSpareServers 10\n" if args.mpm == "prefork" else
        "MinSpareThreads 75\nMaxSpareThreads 250\n")
    if os.geteuid() != 0:
        sys.exit("stopcycles.py runs apache2 with User www-data: run it as root")
    # Stopped by a signal, the cleanup below still stops pebble and the server.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit("stopcycles: terminated"))
    work = tempfile.mkdtemp(prefix="mod_acme-stopcycles-")
    os.chmod(work, 0o755)
    # For "order", pebble's own random sleep before validating keeps the worker busy.
    pebble = acmetest.Pebble(os.path.join(work, "pebble"),
                             env_extra={"PEBBLE_VA_NOSLEEP": "0"} if args.stop_at == "order"
                             else None)
    times, stuck = [], 0
    h = acmetest.Httpd(os.path.join(acmetest.public_dir(work, "httpd"), "server"), pebble,
                       mpm=args.mpm)
    try:
        for n in range(1, args.cycles + 1):
            took, left = one_cycle(h, n, args.stop_at, extra)
            times.append(took)
            stuck += left
            if n % 10 == 0 or n == args.cycles:
                log = h.log_text()
                print(f"cycle {n}: AH00046 {log.count('AH00046')}, AH00045 "
                      f"{log.count('AH00045')}, stop took max {max(times):.2f} s", flush=True)
        log = h.log_text()
        print(f"stopcycles: {args.cycles} cycles ({args.mpm}, {args.spare} spares, stop at "
              f"{args.stop_at}): "
              f"AH00046 (SIGKILL) {log.count('AH00046')}, AH00045 (still running after 3 s) "
              f"{log.count('AH00045')}, processes left after 30 s {stuck}; "
              f"stop to last exit median {statistics.median(times):.2f} s, "
              f"max {max(times):.2f} s; ACME02301 (workers busy at stop) "
              f"{log.count('ACME02301')}, ACME02300 (work abandoned) {log.count('ACME02300')}"
              + (f", issuance over before the stop {busy_misses[0]}"
                 if args.stop_at == "order" else ""))
    finally:
        if h.pid() and h.processes():
            os.kill(h.pid(), signal.SIGTERM)
        pebble.stop()
        if os.environ.get("KEEP_TEST_DIRS") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    main()
