"""Soak: many issuances through Apache against pebble with its own defaults, and the memory of
the renewal driver's child over hundreds of renewals. Prints figures; asserts nothing about
speed. Not part of make check (it takes about 8 minutes on 2 cores).

    /usr/bin/python3 tests/bench/soak.py [--domains 500] [--rounds 2] [--validity 300]
                                         [--restarts 10]

One Apache (event MPM, the module from top_builddir or the source tree) with --domains
ACMEDomains, one name and one TLS vhost each, against one pebble with its default 5 % badNonce
and 50 % authorization reuse and real http-01 validation (pebble asks this Apache), issuing
certificates valid for --validity seconds:

  generation 1  obtains a certificate for every domain (--domains issuances);
  generation 2+ renews every domain once per round (--rounds x --domains renewals).

ACMEAutoRestart is off, so that one child renews every domain: the driver stages a renewed set
and leaves that domain alone until a restart activates it (docs/apache.md). The script plays
the operator: when every domain has a new staged set it sends one graceful restart (SIGUSR1)
and checks that the parent activated all of them. The driver child is the process that logs
the domains' ACME01054 lines; a graceful restart moves it to a new child, so memory is sampled
per generation: VmRSS of that child every 0.5 s against the number of certificates it has
obtained so far.

Figures: issuances and failed attempts (ACME01053/ACME01055, [error] lines), restarts, and per
generation the driver child's RSS after its first certificate and at the end, and the growth in
KiB per certificate after the first --warmup (thread stacks and malloc arenas of the first
workers are not growth): the least-squares slope, and (end - at warm-up) / count. Goal: about 0.
Then --restarts graceful restarts with nothing to activate, and the parent's RSS after each.
Exits 1 unless every certificate was obtained and activated without a failed attempt.
"""
import argparse
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import acmetest  # noqa: E402

OBTAINED = re.compile(r"\[pid (\d+):tid \d+\] ACME01054: (\S+): new certificate obtained")
ACTIVATED = re.compile(r"ACME01020: (\S+): new certificate activated")
FAILED = re.compile(r"ACME0105[35]: ")


class Log:
    """Reads the error log incrementally."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.rest = ""

    def new_lines(self):
        try:
            with open(self.path, errors="replace") as f:
                f.seek(self.offset)
                data = f.read()
                self.offset = f.tell()
        except OSError:
            return []
        data = self.rest + data
        lines = data.split("\n")
        self.rest = lines.pop()
        return lines


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def slope(points):
    """Least-squares slope of y over x."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    if var == 0:
        return float("nan")
    return sum((x - mx) * (y - my) for x, y in points) / var


class Generation:
    def __init__(self, number):
        self.number = number
        self.driver = None      # PID of the child that obtains the certificates
        self.obtained = set()   # domains with a new staged set in this generation
        self.samples = []       # (certificates obtained so far, VmRSS KiB)
        self.parent_rss = None


def run(args, work):
    pebble = acmetest.Pebble(os.path.join(work, "pebble"), validity=args.validity)
    names = [f"d{i:04d}.soak.test" for i in range(args.domains)]
    h = acmetest.Httpd(os.path.join(work, "httpd"), pebble)
    conf = h.base_conf().replace("LogLevel info acme:debug", "LogLevel info acme:info")
    conf += ("ACMEContactEmail admin@soak.test\nACMEAgreement accepted\nACMEAutoRestart off\n")
    conf += "".join(f"ACMEDomain {n}\n" for n in names)
    conf += "".join(h.ssl_vhost(n) for n in names)
    with open(h.conf_path, "w") as f:
        f.write(conf)

    log = Log(h.error_log)
    failures = []
    errors = []
    gens = []
    parent_rss = []
    t_start = time.monotonic()
    requests_before = pebble.request_count()
    try:
        h.start()
        for number in range(1, args.rounds + 2):
            g = Generation(number)
            gens.append(g)
            what = "issuances" if number == 1 else "renewals"
            t0 = time.monotonic()
            deadline = t0 + args.timeout
            next_sample = 0.0
            while len(g.obtained) < len(names):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"generation {number}: {len(g.obtained)} of {len(names)} "
                                       f"{what} after {args.timeout} s; see {h.error_log}")
                for line in log.new_lines():
                    m = OBTAINED.search(line)
                    if m:
                        pid = int(m.group(1))
                        if g.driver is None:
                            g.driver = pid
                        elif pid != g.driver:
                            raise RuntimeError(f"generation {number}: certificates obtained by "
                                               f"two children ({g.driver}, {pid})")
                        g.obtained.add(m.group(2))
                    elif FAILED.search(line):
                        failures.append(line)
                    elif ":error]" in line or ":crit]" in line or ":emerg]" in line:
                        errors.append(line)
                now = time.monotonic()
                if g.driver and now >= next_sample:
                    next_sample = now + 0.5
                    rss = rss_kib(g.driver)
                    if rss:
                        g.samples.append((len(g.obtained), rss))
                time.sleep(0.05)
            rss = rss_kib(g.driver)
            if rss:
                g.samples.append((len(g.obtained), rss))
            print(f"generation {number}: {len(g.obtained)} {what} by child {g.driver} in "
                  f"{time.monotonic() - t0:.0f} s", flush=True)
            # The operator's graceful restart activates every staged set.
            h.graceful()
            activated = set()
            deadline = time.monotonic() + 120
            while activated != set(names) and time.monotonic() < deadline:
                for line in log.new_lines():
                    m = ACTIVATED.search(line)
                    if m:
                        activated.add(m.group(1))
                    elif FAILED.search(line):
                        failures.append(line)
                    elif ":error]" in line or ":crit]" in line or ":emerg]" in line:
                        errors.append(line)
                time.sleep(0.05)
            if activated != set(names):
                raise RuntimeError(f"after generation {number}: {len(activated)} of "
                                   f"{len(names)} sets activated; see {h.error_log}")
            g.parent_rss = rss_kib(h.pid())
        # The parent across graceful restarts with nothing new to activate (logrotate's daily
        # one, say): its memory after each.
        for _ in range(args.restarts):
            n = h.log_text().count("resuming normal operations")
            h.graceful()
            deadline = time.monotonic() + 60
            while h.log_text().count("resuming normal operations") <= n:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no restart within 60 s; see {h.error_log}")
                time.sleep(0.1)
            h.settle(min_age=1.0, timeout=10.0)
            parent_rss.append(rss_kib(h.pid()))
        h.settle(min_age=2.0, timeout=10.0)
        # Every vhost serves a certificate from pebble (a sample of them, by TLS).
        for n in names[:: max(1, len(names) // 20)]:
            c = acmetest.tls_peer_cert(h.https_port, n)
            if "Pebble" not in c.issuer.rfc4514_string() or acmetest.san_names(c) != [n]:
                raise RuntimeError(f"{n} serves {c.subject} from {c.issuer}")
    finally:
        h.stop()
        pebble_requests = pebble.request_count() - requests_before
        pebble.stop()

    issued = sum(len(g.obtained) for g in gens)
    print(f"\n== {issued} certificates ({args.domains} issuances, "
          f"{issued - args.domains} renewals) in {time.monotonic() - t_start:.0f} s; "
          f"{pebble_requests} CA requests ({pebble_requests / issued:.1f} per certificate); "
          f"{len(gens)} graceful restarts")
    print(f"   failed attempts (ACME01053/ACME01055): {len(failures)}; other error lines: "
          f"{len(errors)}")
    for line in (failures + errors)[:10]:
        print("     " + line[:300])
    print(f"\n== the driver child's memory, per generation (VmRSS, KiB; growth after the first "
          f"{args.warmup} certificates)")
    for g in gens:
        after = [(n, r) for n, r in g.samples if n >= args.warmup]
        first = next(((n, r) for n, r in g.samples if n >= 1), None)
        peak = max(r for _, r in g.samples) if g.samples else None
        end = g.samples[-1] if g.samples else None
        per = ((end[1] - after[0][1]) / (end[0] - after[0][0])
               if after and end and end[0] > after[0][0] else float("nan"))
        print(f"   generation {g.number} (child {g.driver}, "
              f"{'issuances' if g.number == 1 else 'renewals'}): "
              f"{first[1] if first else '?'} after the first, "
              f"{after[0][1] if after else '?'} after {after[0][0] if after else '?'}, "
              f"{end[1] if end else '?'} after {end[0] if end else '?'} (peak {peak}); "
              f"{slope(after):+.2f} KiB per certificate (least squares, {len(after)} samples), "
              f"{per:+.2f} (end - warm-up); parent {g.parent_rss} KiB after activation")
    if parent_rss:
        half = parent_rss[len(parent_rss) // 2:]
        print(f"\n== the parent over {len(parent_rss)} more graceful restarts (VmRSS, KiB): "
              f"{', '.join(map(str, parent_rss))}; "
              f"{(half[-1] - half[0]) / max(1, len(half) - 1):+.1f} KiB per restart over the "
              f"last {len(half)}")
    renewals = [g for g in gens if g.number > 1]
    return (not failures and not errors and
            all(len(g.obtained) == args.domains for g in gens) and bool(renewals))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--domains", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=2, help="renewal rounds")
    ap.add_argument("--validity", type=int, default=300,
                    help="pebble's certificate lifetime, seconds (renewal at half of it)")
    ap.add_argument("--warmup", type=int, default=50,
                    help="certificates before the growth is measured")
    ap.add_argument("--restarts", type=int, default=10,
                    help="graceful restarts at the end, for the parent's memory")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds per generation")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak: runs Apache with User www-data: needs root")
    for tool in ("pebble", "pebble-challtestsrv", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"soak: {tool} is not installed")
    if not os.access(acmetest.module_path(), os.R_OK):
        sys.exit(f"soak: {acmetest.module_path()} is not built: run make")
    work = tempfile.mkdtemp(prefix="mod_acme-soak-")
    os.chmod(work, 0o755)
    ok = False
    try:
        ok = run(args, work)
    finally:
        if os.environ.get("KEEP_BENCH_DIRS") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
