"""Instructions per static request with N ACMEDomains loaded, against the same server without
the module, counted by valgrind's callgrind: a figure that, unlike wrk's requests per second
(5-37% apart between runs of one setup on a shared machine), does not move with the load.
Prints figures and the ratio; asserts nothing.

    /usr/bin/python3 tests/bench/request_instr.py [--n 10,1000] [--requests 40]

For each N and each kind (mod_acme, none) one `httpd -X` runs under `valgrind
--tool=callgrind`, counting only inside ap_run_process_connection (the request path: not the
start, not the renewal driver's ticks). The TLS vhosts are the same in both (one certificate
of their own); with mod_acme each domain's job file says to try again in a day, so the driver
has nothing to do, and its fallbacks are made beforehand by a normal start. The requests are
GET /index.html over plain HTTP, a connection each, Host the last of the N names. A request
for a page that does not exist makes the server dump its counters
(--dump-before=ap_send_error_response): after a warm-up, after R requests and after 5 x R; the
difference of the last two dumps divided by 4 x R is one request's cost (each dump also holds
one not-found request, which the difference cancels).
"""
import argparse
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import acmetest  # noqa: E402
import bench  # noqa: E402
import scale  # noqa: E402  (run_httpd, handshake_ok)


def get_close(port, host, path="/index.html"):
    """One request on its own connection; returns the status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as c:
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                  .encode())
        data = b""
        while True:
            b = c.recv(65536)
            if not b:
                break
            data += b
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


def instructions(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def dumps(outdir, pid):
    files = glob.glob(f"{outdir}/cg.{pid}.*")
    return sorted(files, key=lambda f: int(f.rsplit(".", 1)[1]))


def dump_now(h, host, outdir, pid, count, timeout=300):
    """A not-found request: the server dumps its counters; waits for dump number count."""
    status = get_close(h.http_port, host, "/no-such-page-bench")
    if " 404 " not in status + " ":
        raise RuntimeError(f"{host}: {status} for the dump request")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = dumps(outdir, pid)
        if len(files) >= count:
            return files[count - 1]
        time.sleep(0.2)
    raise RuntimeError(f"{outdir}: no callgrind dump {count}")


def server(work, pebble, kind, names, crt, key, limit):
    h = bench.Server(os.path.join(work, f"ir-{kind}-{len(names)}"), pebble, kind)
    if kind == "acme":
        jobs = os.path.join(h.store, "jobs")
        os.makedirs(jobs, exist_ok=True)
        later = int(time.time()) + 24 * 3600
        for x in names:
            with open(os.path.join(jobs, f"{x}.json"), "w") as f:
                f.write('{"next-run": %d}' % later)
    h.conf([[x] for x in names], extra=f"SSLCertificateFile {crt}\nSSLCertificateKeyFile {key}\n")
    if kind == "acme":
        # The fallbacks are made by a normal start, not under valgrind.
        r = scale.run_httpd(h, "-k", "start")
        if r.returncode != 0:
            raise RuntimeError(f"httpd did not start: {r.stdout}{r.stderr}")
        h.started_pids.add(h.pid())
        t = time.monotonic()
        while not scale.handshake_ok(h, names[-1]) and time.monotonic() < t + limit:
            time.sleep(0.1)
        h.stop()
    return h


def measure(h, host, outdir, requests, limit):
    """Instructions per request, and the seconds until the server answered under valgrind."""
    os.makedirs(outdir, exist_ok=True)
    os.chmod(outdir, 0o777)  # the server, as the User by then, writes its dumps there
    t0 = time.monotonic()
    vg = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--vgdb=no", "--collect-atstart=no",
         "--toggle-collect=ap_run_process_connection", "--dump-before=ap_send_error_response",
         f"--callgrind-out-file={outdir}/cg.%p", f"--log-file={outdir}/vg.%p",
         acmetest.HTTPD_BIN, "-d", h.root, "-f", h.conf_path, "-X"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=h.env())
    try:
        while True:
            if vg.poll() is not None:
                raise RuntimeError(f"httpd under valgrind exited: {h.log_text()[-2000:]}")
            if time.monotonic() > t0 + limit:
                raise RuntimeError("httpd under valgrind did not answer in time")
            try:
                if get_close(h.http_port, host).endswith("200 OK"):
                    break
            except OSError:
                pass
            time.sleep(1)
        up = time.monotonic() - t0
        for _ in range(5):  # warm-up
            get_close(h.http_port, host)
        dump_now(h, host, outdir, vg.pid, 1)
        counts = []
        for k, n in enumerate((requests, 5 * requests)):
            for _ in range(n):
                status = get_close(h.http_port, host)
                if not status.endswith("200 OK"):
                    raise RuntimeError(f"{host}: {status}")
            counts.append(instructions(dump_now(h, host, outdir, vg.pid, k + 2)))
    finally:
        vg.send_signal(signal.SIGTERM)
        try:
            vg.wait(timeout=300)
        except subprocess.TimeoutExpired:
            vg.kill()
            vg.wait()
    return (counts[1] - counts[0]) / (4 * requests), up


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="10,1000", help="ACMEDomains, comma-separated")
    ap.add_argument("--requests", type=int, default=40,
                    help="R: the dumps are after R and after 5 x R requests")
    ap.add_argument("--limit", type=float, default=3600,
                    help="seconds allowed for a start under valgrind")
    args = ap.parse_args()
    for tool in ("valgrind", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"request_instr: {tool} is not installed (apt-get install {tool})")
    work = tempfile.mkdtemp(prefix="mod_acme-instr-")
    os.chmod(work, 0o755)
    pebble = acmetest.Pebble(os.path.join(work, "pebble"))
    key, crt = os.path.join(work, "static.key"), os.path.join(work, "static.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-subj",
                    "/CN=static.test", "-days", "2"], check=True, capture_output=True)
    os.chmod(key, 0o644)
    try:
        for n in (int(x) for x in args.n.split(",") if x):
            names = [f"d{i}.ir.test" for i in range(n)]
            per = {}
            for kind in ("acme", "none"):
                h = server(work, pebble, kind, names, crt, key, args.limit)
                per[kind], up = measure(h, names[-1], os.path.join(work, f"cg-{kind}-{n}"),
                                        args.requests, args.limit)
                print(f"   {n} ACMEDomains, {kind}: {per[kind]:,.0f} instructions per request "
                      f"(up under valgrind after {up:.0f} s)", flush=True)
                shutil.rmtree(h.root, ignore_errors=True)
            print(f"instructions per static request, {n} ACMEDomains: with mod_acme "
                  f"{per['acme']:,.0f}, without the module {per['none']:,.0f}, "
                  f"{per['acme'] - per['none']:+,.0f} ({per['acme'] / per['none']:.4f})",
                  flush=True)
    finally:
        pebble.stop()
        if os.environ.get("KEEP_BENCH_DIRS") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
