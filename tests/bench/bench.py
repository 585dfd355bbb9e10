"""Benchmarks: mod_acme beside Debian's mod_md, on the same pebble, in one run. Prints figures
and ratios; asserts nothing about speed (a loaded machine would make that flaky).

    /usr/bin/python3 tests/bench/bench.py [--runs 5] [--quick] [--only 1,2,6]

Figures:
  1. start -> real certificate served, median of N runs, for 1 and for 10 domains. mod_md needs
     a graceful restart to activate: the bench sends it the moment mod_md logs that a domain is
     ready (AH10059), as the fastest operator or cron could.
  2. HTTP requests to the CA per certificate (pebble's log), first certificate (for one name
     including the server generations after the restart) and renewal.
  3. challenge answers per second (wrk, keep-alive and Connection: close) against the same bytes
     served as a static file by the same server.
  4. static file throughput with the module loaded and 10 ACMEDomains configured, against the
     same server without the module.
  5. 100 ACMEDomains in one start (time, requests, restarts, memory).
  6. (only with --only ...6) connections to the CA, as CONNECTs through a counting proxy.
"""
import argparse
import json
import os
import re
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
import connectproxy  # noqa: E402

TOKEN = "benchTOKEN_abcdefghijklmnopqrstuvwxyz01234567"
KEYAUTH = TOKEN + ".bench-thumbprint-0123456789abcdefghijklmnopq"


class Server(acmetest.Httpd):
    """An Httpd whose ACME part is mod_acme, mod_md or nothing."""

    def __init__(self, root, pebble, kind):
        super().__init__(root, pebble)
        self.kind = kind

    def conf(self, domains, extra=""):
        base = self.base_conf(ca=False)
        if self.kind != "acme":
            base = "\n".join(l.replace(" acme:debug", "") for l in base.splitlines()
                             if "acme_module" not in l and not l.startswith("ACME")) + "\n"
        vhosts = "".join(self.ssl_vhost(d[0], d[1:]) for d in domains)
        http_vhost = (f"<VirtualHost 127.0.0.1:{self.http_port}>\n    ServerName localhost\n"
                      f"    ServerAlias {' '.join(n for d in domains for n in d)}\n"
                      f"</VirtualHost>\n")
        if self.kind == "acme":
            acme = (f"ACMECertificateAuthority {self.pebble.directory}\n"
                    f"ACMECACertificateFile {self.pebble.ca_file}\n"
                    "ACMEContactEmail admin@bench.test\nACMEAgreement accepted\n" +
                    "".join(f"ACMEDomain {' '.join(d)}\n" for d in domains))
        elif self.kind == "md":
            acme = (f"LoadModule md_module {acmetest.MODULES_DIR}/mod_md.so\n"
                    f"MDCertificateAuthority {self.pebble.directory}\n"
                    f"MDCACertificateFile {self.pebble.ca_file}\n"
                    "MDContactEmail admin@bench.test\nMDCertificateAgreement accepted\n"
                    f"MDStoreDir {self.root}/md\n"
                    f"MDPortMap http:{self.http_port} https:{self.https_port}\n"
                    "MDCAChallenges http-01\n" +
                    "".join(f"MDomain {' '.join(d)}\n" for d in domains))
        else:
            acme = ""
        with open(self.conf_path, "w") as f:
            f.write(base + acme + http_vhost + vhosts + extra)


def serves_pebble_cert(h, name):
    try:
        c = acmetest.tls_peer_cert(h.https_port, name, timeout=2)
        return "Pebble" in c.issuer.rfc4514_string()
    except OSError:
        return False


STEPS = [("ACME01062", "worker started"), ("ACME01054", "certificate obtained and staged"),
         ("ACME01059", "the driver asks for the restart (writes the flag)"),
         ("ACME02214", "the parent's restart thread is woken (inotify)"),
         ("ACME02207", "the parent sees the restart flag, tests the configuration"),
         ("ACME01070", "configuration passed, restarting"),
         ("ACME01020", "new generation: certificate activated")]
TIMELINES = []  # (seconds from start to each step, to served) of mod_acme's 1-domain runs


def timeline(h, t0_wall, served):
    """When each step of STEPS was logged first, in seconds from the start."""
    out = {}
    for line in h.log_text().splitlines():
        for tag, _ in STEPS:
            if tag in line and tag not in out:
                out[tag] = acmetest._log_time(line) - t0_wall
    out["served"] = served
    return out


def time_to_certs(work, pebble, kind, ndomains, run, settle=0.0, names=2, extra=""):
    """Seconds from `apachectl start` until every vhost serves a certificate from pebble, and
    the CA requests made meanwhile."""
    h = Server(os.path.join(work, f"{kind}-{ndomains}-{run}"), pebble, kind)
    domains = [[f"d{i}.{kind}{run}.test", f"www.d{i}.{kind}{run}.test"][:names]
               for i in range(ndomains)]
    h.conf(domains, extra=extra)
    mark = pebble.request_count()
    t0 = time.monotonic()
    t0_wall = time.time()
    h.start()
    graceful_sent = 0
    pending = [d[0] for d in domains]
    deadline = t0 + 120
    while pending and time.monotonic() < deadline:
        if kind == "md":
            ready = h.log_text().count("AH10059")
            # mod_md sets domains up one after another; activate as soon as each is ready.
            if ready > graceful_sent:
                graceful_sent = ready
                h.graceful()
        pending = [n for n in pending if not serves_pebble_cert(h, n)]
        if pending:
            time.sleep(0.02)
    elapsed = time.monotonic() - t0
    requests = pebble.request_count() - mark
    ok = not pending
    if ok and kind == "acme" and ndomains == 1 and not settle and not extra:
        TIMELINES.append(timeline(h, t0_wall, elapsed))
    if ok and settle:
        # What the server generations after the restart still ask the CA (the bench may wait;
        # tests wait for events instead).
        time.sleep(settle)
        requests = pebble.request_count() - mark
    h.stop()
    if not ok:
        print(f"   {kind} {ndomains} run {run}: not all certificates after 120 s; see {h.root}")
    return elapsed if ok else None, requests, h


def connections(work, pebble, kind, ndomains, run):
    """TCP connections (each a TLS handshake) to the CA while ndomains get their first
    certificate, counted as CONNECTs through a proxy both modules are told to use."""
    proxy = connectproxy.ConnectProxy()
    try:
        directive = "ACMEHttpProxy" if kind == "acme" else "MDHttpProxy"
        t, _, _ = time_to_certs(work, pebble, kind, ndomains, f"conn{run}", settle=1.0,
                                extra=f"{directive} http://127.0.0.1:{proxy.port}\n")
        return len(proxy.seen) if t is not None else float("nan")
    finally:
        proxy.stop()


def renewal_requests(work, kind):
    """CA requests of a first certificate (1 name) and of its automatic renewal (same account),
    with a pebble issuing 30-second certificates so renewal comes within the run."""
    pb = acmetest.Pebble(os.path.join(work, f"pebble-renew-{kind}"), validity=30,
                         env_extra={"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"})
    try:
        h = Server(os.path.join(work, f"renew-{kind}"), pb, kind)
        name = f"renew.{kind}.test"
        h.conf([[name]], extra="MDRenewWindow 50%\n" if kind == "md" else "")
        mark = pb.request_count()
        h.start()
        issued = "ACME01054" if kind == "acme" else "AH10059"
        first = second = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and second is None:
            n = h.log_text().count(issued)
            if n >= 1 and first is None:
                first = pb.request_count() - mark
                mark2 = pb.request_count()
                if kind == "md":
                    h.graceful()
            if n >= 2:
                second = pb.request_count() - mark2
            time.sleep(0.05)
        h.stop()
        return first, second
    finally:
        pb.stop()


def wrk(port, host, path, close=False, seconds=3, conns=10):
    argv = ["wrk", "-t", "1", "-c", str(conns), "-d", f"{seconds}s", "-H", f"Host: {host}"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}{path}")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    m = re.search(r"Requests/sec:\s+([0-9.]+)", r.stdout)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    if not m:
        raise RuntimeError(f"wrk failed: {r.stdout}{r.stderr}")
    if non2xx:
        raise RuntimeError(f"wrk got errors: {r.stdout}")
    return float(m.group(1))


def challenge_throughput(work, pebble, kind, seconds):
    """Answers/s for a published challenge, and the same bytes as a static file."""
    h = Server(os.path.join(work, f"chal-{kind}"), pebble, kind)
    name = f"chal.{kind}.test"
    with open(os.path.join(h.docroot, "static.txt"), "w") as f:
        f.write(KEYAUTH)
    if kind == "acme":
        # A pending challenge as the driver leaves it; next-run keeps the driver away.
        os.makedirs(os.path.join(h.store, "jobs"), exist_ok=True)
        with open(os.path.join(h.store, "jobs", f"{name}.json"), "w") as f:
            json.dump({"next-run": int(time.time()) + 3600, "challenges": [
                {"token": TOKEN, "host": name, "keyauth": KEYAUTH,
                 "expires": int(time.time()) + 3600}]}, f)
    else:
        d = os.path.join(h.root, "md", "challenges", name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "acme-http-01.txt"), "w") as f:
            f.write(KEYAUTH)
    h.conf([[name]])
    h.start()
    time.sleep(0.5)
    path = "/.well-known/acme-challenge/" + TOKEN
    status, _, body = acmetest.http_get(h.http_port, name, path)
    assert status == 200 and body == KEYAUTH.encode(), (kind, status, body)
    out = {}
    for close in (False, True):
        label = "close" if close else "keep-alive"
        out[f"challenge {label}"] = wrk(h.http_port, name, path, close, seconds)
        out[f"static {label}"] = wrk(h.http_port, name, "/static.txt", close, seconds)
    # Keep-alive kept on challenge answers: curl reuses the connection for a second answer?
    url = f"http://127.0.0.1:{h.http_port}{path}"
    kept = "Re-using existing connection" in subprocess.run(
        ["curl", "-sv", "-o", "/dev/null", "-o", "/dev/null", "-H", f"Host: {name}", url, url],
        capture_output=True, text=True).stderr
    out["keep-alive kept"] = kept
    h.stop()
    return out


def static_overhead(work, pebble, seconds):
    """index.html throughput: with mod_acme and 10 ACMEDomains, and without the module. The
    TLS vhosts carry their own certificate in both, so that the configurations differ only in
    the module's lines."""
    out = {}
    key = os.path.join(work, "static.key")
    crt = os.path.join(work, "static.pem")
    if not os.path.exists(crt):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                        "-subj", "/CN=s0.test", "-days", "2"], check=True, capture_output=True)
        os.chmod(key, 0o644)
    for i, kind in enumerate(("acme", "none") * 3):
        h = Server(os.path.join(work, f"static-{kind}-{i}"), pebble, kind)
        h.conf([[f"s{i}.test"] for i in range(10)],
               extra=f"SSLCertificateFile {crt}\nSSLCertificateKeyFile {key}\n")
        h.start()
        time.sleep(1.0)
        rate = wrk(h.http_port, "s3.test", "/index.html", False, seconds)
        out.setdefault(kind, []).append(rate)
        h.stop()
    return out


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def scale(work, pebble, n):
    """n ACMEDomains (2 names each) in one start: wall time to all served, CA requests,
    restarts, and the server's peak memory (sum of RSS over its processes)."""
    h = Server(os.path.join(work, f"scale-{n}"), pebble, "acme")
    domains = [[f"d{i}.scale.test", f"www.d{i}.scale.test"] for i in range(n)]
    h.conf(domains)
    mark = pebble.request_count()
    t0 = time.monotonic()
    h.start()
    peak = 0
    pending = [d[0] for d in domains]
    deadline = t0 + 300
    last_check = 0
    while pending and time.monotonic() < deadline:
        peak = max(peak, rss_kib(h.processes()))
        if time.monotonic() - last_check > 0.5:
            last_check = time.monotonic()
            pending = [d for d in pending if not serves_pebble_cert(h, d)]
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    requests = pebble.request_count() - mark
    restarts = h.log_text().count("ACME01070")
    idle = rss_kib(h.processes())
    h.stop()
    return (elapsed if not pending else None), requests, restarts, peak, idle


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="1 run, short wrk")
    ap.add_argument("--scale", type=int, default=100, help="domains for the scale figure")
    ap.add_argument("--only", default="1,2,3,4,5",
                    help="comma-separated sections to run (default all: 1,2,3,4,5)")
    args = ap.parse_args()
    runs = 1 if args.quick else args.runs
    seconds = 2 if args.quick else 4
    for tool in ("wrk", "pebble", "openssl", "curl"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is not installed (apt-get install {tool})")
    if not os.path.exists(os.path.join(acmetest.MODULES_DIR, "mod_md.so")):
        sys.exit("bench: Debian's mod_md is missing (package apache2)")
    work = tempfile.mkdtemp(prefix="mod_acme-bench-")
    os.chmod(work, 0o755)
    pebble = acmetest.Pebble(os.path.join(work, "pebble"),
                             env_extra={"PEBBLE_WFE_NONCEREJECT": "0"})
    only = set(args.only.split(","))
    try:
        times = {}
        reqs = {}
        if only & {"1", "2"}:
            print("== 1. start -> real certificate served (median of %d; pebble NOSLEEP, no "
                  "nonce rejection)" % runs)
        for n in (1, 10) if only & {"1", "2"} else ():
            for kind in ("md", "acme"):
                ts, rs = [], []
                for run in range(runs):
                    t, r, _ = time_to_certs(work, pebble, kind, n, run)
                    if t is not None:
                        ts.append(t)
                        rs.append(r / n)
                times[(kind, n)] = statistics.median(ts) if ts else float("nan")
                reqs[(kind, n)] = statistics.median(rs) if rs else float("nan")
                print(f"   {kind:5s} {n:2d} domain(s): {times[(kind, n)]:.2f} s "
                      f"(runs: {', '.join(f'{t:.2f}' for t in ts)})")
            print(f"   ratio mod_acme/mod_md, {n} domain(s): "
                  f"{times[('acme', n)] / times[('md', n)]:.2f}")

        if TIMELINES:
            print("   where the time goes, mod_acme, 1 domain (error log; median over the runs, "
                  "seconds from start):")
            for tag, what in STEPS + [("served", "served by the new generation (bench sees it)")]:
                ts = [t[tag] for t in TIMELINES if tag in t]
                if ts:
                    print(f"     {statistics.median(ts):5.3f}  {what}")

        if "2" in only:
            print("\n== 2. CA requests per certificate (2 names each, new account included, "
                  "until served)")
            for n in (1, 10):
                print(f"   {n:2d} domain(s): mod_md {reqs[('md', n)]:.1f}, "
                      f"mod_acme {reqs[('acme', n)]:.1f}")
            print("\n   one name, first certificate, counted until 2 s after it is served "
                  "(the server generations after the restart included):")
            for kind in ("md", "acme"):
                rs = []
                for run in range(runs):
                    _, r, _ = time_to_certs(work, pebble, kind, 1, f"one{run}", settle=2.0,
                                            names=1)
                    rs.append(r)
                print(f"   {kind:5s} {statistics.median(rs):.0f} (runs: "
                      f"{', '.join(str(r) for r in rs)})")

            print("\n   one name, first certificate and its renewal (pebble: 30 s certificates, "
                  "no authorization reuse):")
            for kind in ("md", "acme"):
                first, second = renewal_requests(work, kind)
                print(f"   {kind:5s} first {first}, renewal {second}")

        if "6" in only:
            print("\n== 6. connections to the CA (CONNECTs through a counting proxy; each is "
                  "one TLS handshake)")
            for n in (1, 10):
                for kind in ("md", "acme"):
                    cs = []
                    for run in range(runs):
                        cs.append(connections(work, pebble, kind, n, run))
                    print(f"   {kind:5s} {n:2d} domain(s): {statistics.median(cs):.0f} "
                          f"connection(s) (runs: {', '.join(str(c) for c in cs)})")

        if "3" in only:
            print("\n== 3. challenge answers per second (wrk, 10 connections, %d s)" % seconds)
            for kind in ("md", "acme"):
                c = challenge_throughput(work, pebble, kind, seconds)
                print(f"   {kind:5s} keep-alive: challenge {c['challenge keep-alive']:.0f}/s, "
                      f"static {c['static keep-alive']:.0f}/s, ratio "
                      f"{c['challenge keep-alive'] / c['static keep-alive']:.2f}; "
                      f"Connection: close: challenge {c['challenge close']:.0f}/s, static "
                      f"{c['static close']:.0f}/s, ratio "
                      f"{c['challenge close'] / c['static close']:.2f}; "
                      f"keep-alive kept on answers: {c['keep-alive kept']}")

        if "4" in only:
            print("\n== 4. static file throughput, module with 10 ACMEDomains vs no module "
                  "(3 runs each, alternating; median)")
            s = static_overhead(work, pebble, seconds)
            a, n = statistics.median(s["acme"]), statistics.median(s["none"])
            print(f"   with mod_acme {a:.0f}/s (runs {', '.join(f'{x:.0f}' for x in s['acme'])}), "
                  f"without {n:.0f}/s (runs {', '.join(f'{x:.0f}' for x in s['none'])}), "
                  f"ratio {a / n:.3f}; spread between runs of one setup: "
                  f"{(max(s['none']) - min(s['none'])) / n * 100:.0f}%")

        if "5" in only:
            print(f"\n== 5. {args.scale} ACMEDomains (2 names each) in one start, mod_acme")
            t, r, restarts, peak, idle = scale(work, pebble, args.scale)
            print(f"   all served after {t:.2f} s; {r} CA requests ({r / args.scale:.1f} per "
                  f"certificate); {restarts} automatic restart(s); peak memory of the server "
                  f"{peak / 1024:.1f} MiB (sum of RSS), {idle / 1024:.1f} MiB at the end"
                  if t else f"   not all served within 300 s ({r} CA requests)")
    finally:
        pebble.stop()
        if os.environ.get("KEEP_BENCH_DIRS") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
