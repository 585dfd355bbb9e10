"""Scale bench: N ACMEDomains (one name each, each with its TLS vhost) on one pebble
(PEBBLE_VA_NOSLEEP=1, no nonce rejection), mod_acme and, at the sizes asked, Debian's mod_md.
Prints figures per N and the exponent of each cost against N (log-log slope); asserts nothing.

    nice -n 10 /usr/bin/python3 tests/bench/scale.py [--n 10,100,1000] [--md 100]
        [--none 10,100,1000]

--restart N (with --builds label=top_builddir,... and --runs R) times only what a restart
costs, each build in turn in every run, with N domains whose CA never answers (the driver
stays idle): configtest, the first start (the N fallbacks made) until the first and the last
name answer a handshake, --gracefuls graceful restarts (seconds and the parent's CPU seconds)
with the fallbacks; then, stopped, an active set for each name from a CA of the bench's own is
put in the store, and the start and the graceful restarts again; "unchanged" is what the
module's ACME01034 says it found unchanged (no decoding) since its start, where it says so.
--promote N (with --builds, --runs): a start that activates N staged sets put in staging/
while stopped, until the last name answers; then the parent's resident [heap] and other
anonymous memory (/proc/<pid>/smaps).

--cas K spreads mod_acme's domains over K pebbles (domain i orders from pebble i % K, in an
<ACMEDomain> section): one pebble stops answering newOrder after about 6,000 orders.
(The instructions of one static request with N ACMEDomains: tests/bench/request_instr.py.)

--none adds the baseline: the same TLS vhosts without any ACME module, one certificate for
all, so that what mod_ssl itself costs per vhost (start, memory, graceful) is seen beside.

Per N:
  configtest  `apache2 -t` with the N domains (no certificate yet)
  start       `apache2 -k start` -> the first generation answers a TLS handshake
  all served  `apache2 -k start` -> every name is served a certificate from pebble (mod_acme:
              the last ACME01020 of the N is logged and its name is served; then every name is
              checked once, untimed; mod_md: each name checked in turn, a graceful restart sent
              whenever mod_md says one more domain is ready, as bench.py does)
  requests    CA requests per certificate until all served (pebble's log)
  restarts    automatic graceful restarts on the way (ACME01070)
  peak RSS    sum of VmRSS over every process of the server, sampled every 0.2 s (pages the
              parent shares with its children count once per process)
  peak PSS    the same with Pss (smaps_rollup): shared pages divided among their processes,
              so the sum is the memory the server uses
  driver      VmRSS of the renewal driver's child at its first pass, at its peak while
              issuing, and the next generation's driver once all are served (idle), with the
              CPU its ticks use then (3 s of ticks, nothing to do)
  child MiB   VmRSS of the smallest child at the end (a request child)
  graceful    SIGUSR1 with N TLS vhosts holding their certificates -> the new generation
              configured (AH00489) and answering a TLS handshake
"""
import argparse
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import acmetest  # noqa: E402
import bench  # noqa: E402


def vmrss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid):
    """Proportional set size: shared pages divided among the processes that map them, so that
    the sum over processes is the memory they use together (a sum of RSS counts each page the
    parent shares with its children once per process)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """User and system CPU time of a process so far, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, TypeError):
        return None


class LogTail:
    """Counts a tag in a growing error log without reading it all again."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.rest = ""
        self.lines = []

    def read(self):
        try:
            with open(self.path, errors="replace") as f:
                f.seek(self.offset)
                data = f.read()
                self.offset = f.tell()
        except OSError:
            return []
        data = self.rest + data
        new = data.split("\n")
        self.rest = new.pop()
        self.lines += new
        return new

    def text_count(self, tag):
        return sum(tag in line for line in self.lines)


def run_httpd(h, *args, timeout=1800):
    return subprocess.run([acmetest.HTTPD_BIN, "-d", h.root, "-f", h.conf_path, *args],
                          capture_output=True, text=True, timeout=timeout, env=h.env())


def handshake_ok(h, name):
    try:
        acmetest.tls_peer_cert(h.https_port, name, timeout=5)
        return True
    except OSError:
        return False


def spread_over_cas(h, names, cas):
    """mod_acme: domain i is ordered from CA i % len(cas) (an <ACMEDomain> section naming it),
    so that no single pebble holds more orders than it can answer."""
    with open(h.conf_path) as f:
        text = f.read()
    for i, x in enumerate(names):
        ca = cas[i % len(cas)]
        if ca is h.pebble:
            continue
        text = text.replace(f"ACMEDomain {x}\n",
                            f"<ACMEDomain {x}>\n    ACMECertificateAuthority {ca.directory}\n"
                            f"    ACMECACertificateFile {ca.ca_file}\n</ACMEDomain>\n", 1)
    with open(h.conf_path, "w") as f:
        f.write(text)


def measure(work, pebble, kind, n, limit, cas=None):
    """One start of n domains; returns a dict of figures (None where not reached). cas: the
    pebbles mod_acme's domains are spread over (default: pebble alone)."""
    cas = cas or [pebble]
    h = bench.Server(os.path.join(work, f"{kind}-{n}"), pebble, kind)
    names = [f"d{i}.{kind}{n}.test" for i in range(n)]
    extra = ""
    if kind == "none":
        # The baseline: the same TLS vhosts without any ACME module, one certificate for all.
        key, crt = os.path.join(work, "static.key"), os.path.join(work, "static.pem")
        if not os.path.exists(crt):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                            "-subj", "/CN=static.test", "-days", "2"], check=True,
                           capture_output=True)
            os.chmod(key, 0o644)
        extra = f"SSLCertificateFile {crt}\nSSLCertificateKeyFile {key}\n"
    h.conf([[x] for x in names], extra=extra)
    if kind == "acme" and len(cas) > 1:
        spread_over_cas(h, names, cas)
    out = {"kind": kind, "n": n}
    t = time.monotonic()
    r = run_httpd(h, "-t")
    out["configtest"] = time.monotonic() - t
    if r.returncode != 0:
        raise RuntimeError(f"configtest failed: {r.stdout}{r.stderr}")
    tail = LogTail(h.error_log)
    marks = [ca.request_count() for ca in cas]
    peak = peak_pss = 0
    drivers = {}  # pid -> [first, peak]
    last_sample = 0.0

    def sample():
        nonlocal peak, peak_pss, last_sample
        if time.monotonic() - last_sample < 0.2:
            return
        last_sample = time.monotonic()
        procs = h.processes()
        peak = max(peak, sum(vmrss_kib(p) for p in procs))
        peak_pss = max(peak_pss, sum(pss_kib(p) for p in procs))
        d = h.driver_pid()
        if d and d in procs:
            rss = vmrss_kib(d)
            if d not in drivers:
                drivers[d] = [rss, rss]
            drivers[d][1] = max(drivers[d][1], rss)

    t0 = time.monotonic()
    r = run_httpd(h, "-k", "start")
    if r.returncode != 0:
        raise RuntimeError(f"httpd did not start: {r.stdout}{r.stderr}")
    deadline = t0 + limit
    while time.monotonic() < deadline and not handshake_ok(h, names[0]):
        time.sleep(0.01)
    out["start"] = time.monotonic() - t0
    h.started_pids.add(h.pid())
    print(f"   {kind} {n}: configtest {out['configtest']:.2f} s, start {out['start']:.2f} s",
          flush=True)

    served_at = None
    if kind == "none":
        end = time.monotonic() + 2
        while time.monotonic() < end:
            sample()
            time.sleep(0.05)
        served_at = 0.0  # nothing to obtain: the graceful restart is measured at once
    elif kind == "acme":
        activated = set()
        last = None
        said = time.monotonic()
        while time.monotonic() < deadline:
            sample()
            if time.monotonic() - said > 60:
                said = time.monotonic()
                print(f"   {kind} {n}: {tail.text_count('ACME01054')} staged, {len(activated)} "
                      f"activated after {said - t0:.0f} s; peak RSS so far {peak / 1024:.0f} MiB",
                      flush=True)
            for line in tail.read():
                if "ACME01020" in line:
                    name = line.split("ACME01020: ", 1)[1].split(":", 1)[0]
                    activated.add(name)
                    last = name
            if len(activated) >= n and bench.serves_pebble_cert(h, last):
                served_at = time.monotonic() - t0
                break
            time.sleep(0.1)
        if served_at is not None:
            pending = [x for x in names if not bench.serves_pebble_cert(h, x)]
            out["unserved after"] = len(pending)
    else:
        pending = list(names)
        graceful_sent = 0
        while pending and time.monotonic() < deadline:
            sample()
            ready = sum(line.count("AH10059") for line in tail.read()) + graceful_sent
            if ready > graceful_sent:
                graceful_sent = ready
                h.graceful()
            while pending and bench.serves_pebble_cert(h, pending[0]):
                pending.pop(0)
            if pending:
                time.sleep(0.05)
        if not pending:
            served_at = time.monotonic() - t0
    out["served"] = served_at if kind != "none" else None
    out["requests"] = (sum(ca.request_count() for ca in cas) - sum(marks)) / n \
        if kind != "none" else None
    out["restarts"] = h.log_text().count("ACME01070") if kind == "acme" else None
    out["peak_rss"] = peak
    out["peak_pss"] = peak_pss
    # Once all are served: the new generation's driver, idle (memory, and CPU over 3 s of
    # ticks: what each tick costs with N certificates and nothing to do).
    idle_driver = cpu = None
    if kind == "acme" and served_at is not None:
        d = None
        end = time.monotonic() + 10
        while time.monotonic() < end and not (d and d in h.children()):
            d = h.driver_pid()
            time.sleep(0.1)
        time.sleep(1.0)
        c0, t = cpu_seconds(d), time.monotonic()
        time.sleep(3.0)
        c1 = cpu_seconds(d)
        if c0 is not None and c1 is not None:
            cpu = (c1 - c0) / (time.monotonic() - t) * 100
        idle_driver = vmrss_kib(d)
    out["driver_idle"] = idle_driver
    out["driver_cpu"] = cpu
    gens = sorted(drivers.items())
    out["driver_first"] = gens[0][1][0] if gens else None
    out["driver_peak"] = max(v[1] for _, v in gens) if gens else None
    out["child_rss"] = min((vmrss_kib(p) for p in h.children()), default=None)

    if served_at is not None:
        h.settle(min_age=1.0, timeout=30)
        before = h.log_text().count("AH00489")
        t = time.monotonic()
        h.graceful()
        g = None
        while time.monotonic() < t + limit:
            if h.log_text().count("AH00489") > before and handshake_ok(h, names[-1]):
                g = time.monotonic() - t
                break
            time.sleep(0.01)
        out["graceful"] = g
        h.settle(min_age=1.0, timeout=60)
    h.stop()
    shutil.rmtree(h.root, ignore_errors=True)
    return out


def static_throughput(work, pebble, n, runs, seconds):
    """index.html over plain HTTP (wrk, 1 thread, 10 connections, keep-alive) for the last of n
    names: with mod_acme and n ACMEDomains, and without the module, alternating. The TLS vhosts
    carry one certificate of their own in both, and each domain's job file says to try again in
    an hour, so that the driver stays idle and the configurations differ only in the module's
    lines. Returns {kind: [requests/s per run]}."""
    key, crt = os.path.join(work, "static.key"), os.path.join(work, "static.pem")
    if not os.path.exists(crt):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                        "-subj", "/CN=static.test", "-days", "2"], check=True,
                       capture_output=True)
        os.chmod(key, 0o644)
    names = [f"d{i}.static.test" for i in range(n)]
    out = {}
    for i, kind in enumerate(("acme", "none") * runs):
        h = bench.Server(os.path.join(work, f"static-{kind}-{n}-{i}"), pebble, kind)
        if kind == "acme":
            jobs = os.path.join(h.store, "jobs")
            os.makedirs(jobs, exist_ok=True)
            later = int(time.time()) + 3600
            for x in names:
                with open(os.path.join(jobs, f"{x}.json"), "w") as f:
                    f.write('{"next-run": %d}' % later)
        h.conf([[x] for x in names],
               extra=f"SSLCertificateFile {crt}\nSSLCertificateKeyFile {key}\n")
        r = run_httpd(h, "-k", "start")
        if r.returncode != 0:
            raise RuntimeError(f"httpd did not start: {r.stdout}{r.stderr}")
        while not handshake_ok(h, names[-1]):
            time.sleep(0.05)
        h.started_pids.add(h.pid())
        h.settle(min_age=2.0, timeout=60)
        if kind == "acme":
            # The driver's ticks with n certificates and nothing due (3 s).
            d = None
            end = time.monotonic() + 30
            while time.monotonic() < end and not (d and d in h.children()):
                d = h.driver_pid()
                time.sleep(0.1)
            c0, t = cpu_seconds(d), time.monotonic()
            time.sleep(3.0)
            c1 = cpu_seconds(d)
            if c0 is not None and c1 is not None:
                out.setdefault("driver_cpu", []).append(
                    (c1 - c0) / (time.monotonic() - t) * 100)
        bench.wrk(h.http_port, names[-1], "/index.html", False, 1)  # warm-up
        out.setdefault(kind, []).append(
            bench.wrk(h.http_port, names[-1], "/index.html", False, seconds))
        print(f"   static {kind} run {i // 2 + 1}: {out[kind][-1]:.0f}/s", flush=True)
        h.stop()
        shutil.rmtree(h.root, ignore_errors=True)
    return out


def make_sets(work, names):
    """An active certificate set for each name, as the store keeps it, from a CA of the bench's
    own (EC P-256 keys, 60 days left): archive/<name>/1/ and its folder, in work/sets."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    root = os.path.join(work, "sets")
    if os.path.isdir(root):
        return root
    now = datetime.datetime.now(datetime.timezone.utc)
    pem = serialization.Encoding.PEM

    def cert(subject, issuer, key, signer, san=None, ca=False):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(hours=1))
             .not_valid_after(now + datetime.timedelta(days=60))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
        return b.sign(signer, hashes.SHA256()).public_bytes(pem)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scale bench CA")])
    ca_pem = cert(ca_name, ca_name, ca_key, ca_key, ca=True)
    for name in names:
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = cert(x509.Name([]), ca_name, key, ca_key, san=name)
        d = os.path.join(root, "archive", name, "1")
        os.makedirs(d, mode=0o700)
        for fname, data, mode in (
                ("privkey.pem", key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()), 0o600),
                ("fullchain.pem", leaf + ca_pem, 0o644), ("meta.json", b"{}", 0o600)):
            with open(os.path.join(d, fname), "wb") as f:
                f.write(data)
            os.chmod(os.path.join(d, fname), mode)
    return root


def install_sets(h, sets, names):
    """The sets of make_sets made the active ones of h's store (copies: one name per file)."""
    for name in names:
        dst = os.path.join(h.store, "archive", name)
        os.makedirs(os.path.join(h.store, "archive"), mode=0o700, exist_ok=True)
        shutil.copytree(os.path.join(sets, "archive", name), dst, copy_function=shutil.copy2)
        os.makedirs(os.path.join(h.store, "domains"), mode=0o700, exist_ok=True)
        os.symlink(f"../archive/{name}/1", os.path.join(h.store, "domains", name))


def timed_graceful(h, name, limit):
    """SIGUSR1 -> the new generation configured (AH00489) and answering a handshake for name:
    (seconds, CPU seconds the parent used meanwhile)."""
    h.settle(min_age=1.0, timeout=60)
    before = h.log_text().count("AH00489")
    pid = h.pid()
    c0, t = cpu_seconds(pid), time.monotonic()
    h.graceful()
    while time.monotonic() < t + limit:
        if h.log_text().count("AH00489") > before and handshake_ok(h, name):
            return time.monotonic() - t, cpu_seconds(pid) - c0
        time.sleep(0.01)
    return None, None


def timed_start(h, names, limit):
    """apache2 -k start -> a handshake answered for the first and the last name: seconds."""
    t0 = time.monotonic()
    r = run_httpd(h, "-k", "start")
    if r.returncode != 0:
        raise RuntimeError(f"httpd did not start: {r.stdout}{r.stderr}")
    while time.monotonic() < t0 + limit and not (handshake_ok(h, names[0]) and
                                                 handshake_ok(h, names[-1])):
        time.sleep(0.01)
    h.started_pids.add(h.pid())
    return time.monotonic() - t0


def restarts(work, pebble, n, builds, runs, gracefuls, limit):
    """Configtest, first start and graceful restarts of n domains whose CA never answers (the
    job files say to try in an hour: the driver stays idle), for each build (label, top_builddir)
    in turn, runs times: first with only the fallbacks (made at the first start), then with an
    active set for each (copied into the store while stopped). Returns one dict per run."""
    names = [f"d{i}.restart{n}.test" for i in range(n)]
    sets = make_sets(work, names)
    dead = f"https://127.0.0.1:{acmetest.free_port()}/dir"
    out = []
    for run in range(runs):
        for label, build in builds:
            os.environ["top_builddir"] = build
            h = bench.Server(os.path.join(work, f"restart-{label}-{n}-{run}"), pebble, "acme")
            h.conf([[x] for x in names])
            with open(h.conf_path) as f:
                conf = f.read().replace(pebble.directory, dead)
            with open(h.conf_path, "w") as f:
                f.write(conf)
            jobs = os.path.join(h.store, "jobs")
            os.makedirs(jobs, mode=0o700, exist_ok=True)
            later = int(time.time()) + 3600
            for x in names:
                with open(os.path.join(jobs, f"{x}.json"), "w") as f:
                    f.write('{"next-run": %d}' % later)
            r = {"build": label, "run": run + 1}
            t = time.monotonic()
            if run_httpd(h, "-t").returncode != 0:
                raise RuntimeError("configtest failed")
            r["configtest"] = time.monotonic() - t
            r["start_fb"] = timed_start(h, names, limit)
            g = [timed_graceful(h, names[-1], limit) for _ in range(gracefuls)]
            r["graceful_fb"] = [x for x, _ in g]
            r["graceful_fb_cpu"] = [x for _, x in g]
            h.settle(min_age=1.0, timeout=60)
            h.stop()
            install_sets(h, sets, names)
            r["start_sets"] = timed_start(h, names, limit)
            issuer = acmetest.tls_peer_cert(h.https_port, names[-1]).issuer.rfc4514_string()
            if "scale bench CA" not in issuer:
                raise RuntimeError(f"{names[-1]}: the installed set is not served\n"
                                   f"{h.log_text()[-3000:]}")
            g = [timed_graceful(h, names[-1], limit) for _ in range(gracefuls)]
            r["graceful_sets"] = [x for x, _ in g]
            r["graceful_sets_cpu"] = [x for _, x in g]
            found = re.findall(r"; (\d+) found unchanged", h.log_text())
            r["unchanged"] = int(found[-1]) if found else None  # ACME01034, mod_acme_certs.c
            h.settle(min_age=1.0, timeout=60)
            h.stop()
            shutil.rmtree(h.root, ignore_errors=True)
            print(f"   {label} run {run + 1}: " + ", ".join(
                f"{k} {fmt_list(v)}" for k, v in r.items() if k not in ("build", "run")),
                flush=True)
            out.append(r)
    return out


def anon_kib(pid):
    """Resident KiB of the process's [heap] and of its other anonymous mappings (thread arenas,
    large allocations, APR's blocks when its allocator uses mmap), from /proc/<pid>/smaps."""
    heap = other = 0
    name = ""
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5:
                name = head[5] if len(head) > 5 else ""
            elif line.startswith("Rss:") and name in ("", "[heap]"):
                if name == "[heap]":
                    heap += int(head[1])
                else:
                    other += int(head[1])
    return heap, other


def promotions(work, pebble, n, builds, runs, limit):
    """A start that activates n staged sets (copied into staging/ while stopped, as the driver
    leaves them), for each build in turn: seconds until the last name answers with its set,
    and the parent's resident heap and other anonymous memory then. Returns one dict per run."""
    names = [f"d{i}.restart{n}.test" for i in range(n)]
    sets = make_sets(work, names)
    dead = f"https://127.0.0.1:{acmetest.free_port()}/dir"
    out = []
    for run in range(runs):
        for label, build in builds:
            os.environ["top_builddir"] = build
            h = bench.Server(os.path.join(work, f"promote-{label}-{n}-{run}"), pebble, "acme")
            h.conf([[x] for x in names])
            with open(h.conf_path) as f:
                conf = f.read().replace(pebble.directory, dead)
            with open(h.conf_path, "w") as f:
                f.write(conf)
            staging = os.path.join(h.store, "staging")
            jobs = os.path.join(h.store, "jobs")
            os.makedirs(jobs, mode=0o700, exist_ok=True)
            later = int(time.time()) + 3600
            for x in names:
                with open(os.path.join(jobs, f"{x}.json"), "w") as f:
                    f.write('{"next-run": %d}' % later)
                shutil.copytree(os.path.join(sets, "archive", x, "1"), os.path.join(staging, x),
                                copy_function=shutil.copy2)
            r = {"build": label, "run": run + 1}
            r["start_promote"] = timed_start(h, names, limit)
            h.settle(min_age=1.0, timeout=60)
            activated = h.log_text().count("ACME01020")
            heap, other = anon_kib(h.pid())
            r["activated"] = activated
            r["heap_mib"], r["other_anon_mib"] = heap / 1024, other / 1024
            h.stop()
            shutil.rmtree(h.root, ignore_errors=True)
            print(f"   {label} run {run + 1}: " + ", ".join(
                f"{k} {fmt_list(v)}" for k, v in r.items() if k not in ("build", "run")),
                flush=True)
            out.append(r)
    return out


def fmt_list(v):
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "/".join("-" if x is None else f"{x:.2f}" for x in v)
    return f"{v:.2f}"


def slope(points):
    """Least-squares slope of log(cost) against log(N)."""
    pts = [(math.log(n), math.log(v)) for n, v in points if v and v > 0]
    if len(pts) < 2:
        return float("nan")
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else float("nan")


FIGURES = [("configtest", "configtest s", "{:.2f}"), ("start", "start s", "{:.2f}"),
           ("served", "all served s", "{:.2f}"), ("requests", "CA req/cert", "{:.1f}"),
           ("restarts", "restarts", "{}"), ("peak_rss", "peak RSS MiB", "{:.0f}"),
           ("peak_pss", "peak PSS MiB", "{:.0f}"),
           ("driver_first", "driver first MiB", "{:.1f}"),
           ("driver_peak", "driver peak MiB", "{:.1f}"),
           ("driver_idle", "driver idle MiB", "{:.1f}"),
           ("driver_cpu", "driver idle CPU %", "{:.1f}"), ("child_rss", "child MiB", "{:.1f}"),
           ("graceful", "graceful s", "{:.2f}")]
MIB = {"peak_rss", "peak_pss", "driver_first", "driver_peak", "driver_idle", "child_rss"}


def fmt(key, v, spec):
    if v is None:
        return "-"
    return spec.format(v / 1024 if key in MIB else v)


def table(rows):
    head = ["kind", "N"] + [label for _, label, _ in FIGURES]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join([r["kind"], str(r["n"])] +
                                [fmt(k, r.get(k), s) for k, _, s in FIGURES]) + " |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="10,100,1000", help="mod_acme sizes, comma-separated")
    ap.add_argument("--md", default="100", help="mod_md sizes (empty: none)")
    ap.add_argument("--none", default="", help="sizes for the baseline without any ACME "
                    "module (the same TLS vhosts sharing one certificate)")
    ap.add_argument("--static", type=int, default=0,
                    help="N: only the static file throughput with N ACMEDomains against no "
                    "module (wrk, alternating runs)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each for --static")
    ap.add_argument("--seconds", type=int, default=5, help="wrk seconds per run for --static")
    ap.add_argument("--limit", type=float, default=1500, help="seconds allowed per start")
    ap.add_argument("--cas", type=int, default=1,
                    help="pebbles mod_acme's domains are spread over (one pebble answers "
                    "about 6,000 orders, then stops)")
    ap.add_argument("--restart", type=int, default=0,
                    help="N: only configtest, first start and graceful restarts with N domains "
                    "whose CA never answers, with fallbacks and then with active sets")
    ap.add_argument("--builds", default="",
                    help="for --restart: label=top_builddir,... measured in turn in each run "
                    "(default: this build)")
    ap.add_argument("--gracefuls", type=int, default=3, help="graceful restarts per phase")
    ap.add_argument("--promote", type=int, default=0,
                    help="N: only a start that activates N staged sets (time, the parent's "
                    "memory), for each of --builds")
    args = ap.parse_args()
    if not os.path.exists(os.path.join(acmetest.MODULES_DIR, "mod_md.so")) and args.md:
        sys.exit("scale: Debian's mod_md is missing (package apache2)")
    with open("/proc/loadavg") as f:
        print(f"load average at start: {' '.join(f.read().split()[:3])}; "
              f"{os.cpu_count()} CPUs")
    work = tempfile.mkdtemp(prefix="mod_acme-scale-")
    os.chmod(work, 0o755)
    pebble = acmetest.Pebble(os.path.join(work, "pebble"),
                             env_extra={"PEBBLE_WFE_NONCEREJECT": "0"})
    rows = []
    cas = [pebble]
    try:
        # More pebbles validate on the same ports as the first (the server's).
        for k in range(1, args.cas):
            cas.append(acmetest.Pebble(os.path.join(work, f"pebble{k}"),
                                       env_extra={"PEBBLE_WFE_NONCEREJECT": "0"},
                                       http_port=pebble.http_port, tls_port=pebble.tls_port))
        if args.restart or args.promote:
            builds = [tuple(b.split("=", 1)) for b in args.builds.split(",") if b] or \
                [("this", os.path.dirname(os.path.dirname(acmetest.module_path())))]
            if args.restart:
                rows = restarts(work, pebble, args.restart, builds, args.runs, args.gracefuls,
                                args.limit)
            else:
                rows = promotions(work, pebble, args.promote, builds, args.runs, args.limit)
            keys = [k for k in rows[0] if k not in ("build", "run")]
            print("\n| build | run | " + " | ".join(keys) + " |")
            print("|" + "---|" * (len(keys) + 2))
            for r in rows:
                print(f"| {r['build']} | {r['run']} | " +
                      " | ".join(fmt_list(r[k]) for k in keys) + " |")
            for label, _ in builds:
                medians = []
                for k in keys:
                    vals = [x for r in rows if r["build"] == label
                            for x in (r[k] if isinstance(r[k], list) else [r[k]])
                            if x is not None]
                    medians.append(f"{k} {statistics.median(vals):.2f}" if vals else f"{k} -")
                print(f"{label}: medians " + ", ".join(medians))
            return
        if args.static:
            out = static_throughput(work, pebble, args.static, args.runs, args.seconds)
            a, b = statistics.median(out["acme"]), statistics.median(out["none"])
            spread = (max(out["none"]) - min(out["none"])) / b * 100
            print(f"static file, {args.static} ACMEDomains: with mod_acme {a:.0f}/s (runs "
                  f"{', '.join(f'{x:.0f}' for x in out['acme'])}), without the module {b:.0f}/s "
                  f"(runs {', '.join(f'{x:.0f}' for x in out['none'])}); ratio of medians "
                  f"{a / b:.3f}; spread of the runs without the module {spread:.0f}%")
            if out.get("driver_cpu"):
                print(f"renewal driver idle with {args.static} certificates, nothing due: "
                      f"{', '.join(f'{x:.1f}' for x in out['driver_cpu'])}% of a CPU")
            return
        plan = [("acme", int(x)) for x in args.n.split(",") if x] + \
               [("md", int(x)) for x in args.md.split(",") if x] + \
               [("none", int(x)) for x in args.none.split(",") if x]
        for kind, n in plan:
            r = measure(work, pebble, kind, n, args.limit, cas)
            rows.append(r)
            print(f"{kind} {n}: " + ", ".join(f"{label} {fmt(k, r.get(k), s)}"
                                               for k, label, s in FIGURES) +
                  (f", unserved at the check {r['unserved after']}" if "unserved after" in r
                   else ""), flush=True)
        print()
        table(rows)
        acme = [r for r in rows if r["kind"] == "acme"]
        for kind in ("acme", "none", "md"):
            some = [r for r in rows if r["kind"] == kind]
            if len(some) < 2:
                continue
            print(f"\nexponent of each cost against N (log-log slope), {kind} over N = " +
                  ", ".join(str(r["n"]) for r in some) +
                  " (fixed costs flatten the slope at small N: the last pair is the marginal "
                  "one):")
            for key, label, _ in FIGURES:
                pts = [(r["n"], r.get(key)) for r in some]
                if key in ("requests", "restarts") or not any(v for _, v in pts):
                    continue
                print(f"   {label:18s} {slope(pts):5.2f} over all, {slope(pts[-2:]):5.2f} "
                      f"between the two largest")
        for md in (r for r in rows if r["kind"] == "md"):
            a = next((r for r in acme if r["n"] == md["n"]), None)
            if a and a.get("served") and md.get("served"):
                print(f"ratio mod_acme/mod_md all served, N = {md['n']}: "
                      f"{a['served'] / md['served']:.3f}")
        with open("/proc/loadavg") as f:
            print(f"load average at end: {' '.join(f.read().split()[:3])}")
    finally:
        for ca in cas:
            ca.stop()
        if os.environ.get("KEEP_BENCH_DIRS") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
