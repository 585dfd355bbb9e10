"""Benchmark of ACMEActivation live against graceful, in one run, on the same pebble. Prints
figures and ratios; asserts nothing about speed (a loaded machine would make that flaky).

    /usr/bin/python3 tests/bench/live.py [--runs 5] [--seconds 5]

Figures:
  1. start -> real certificate served for one domain (a fresh store: the fallback first), live
     against graceful, runs alternating; and renewal staged -> new serial served (acmectl renew).
  2. full TLS handshakes per second (openssl s_time -new, TLS 1.3 and TLS 1.2, no SNI: the
     only vhost), after a warm-up, in runs whose order turns: live after a live renewal (the certificate callback puts the
     set published live on every handshake), graceful (mod_ssl's own), and plain mod_ssl without
     mod_acme serving the same certificate files. Beside handshakes per second (which move with
     whatever else runs on the machine, the client included), the server's CPU time per
     handshake: utime + stime of all its processes (/proc/PID/stat) over the run, divided by
     the handshakes; the ratio graceful/live of it is the cost of the live certificate
     callback, less sensitive to the load around.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import acmetest  # noqa: E402

ACMECTL = os.path.join(os.environ.get("top_builddir", TOP), "acmectl")
NAME = "bench-live.test"


def server(workdir, pebble, tag, activation, n):
    h = acmetest.Httpd(os.path.join(workdir, f"{tag}-{activation}-{n}"), pebble)
    h.write_conf("ACMEContactEmail admin@bench.test\nACMEAgreement accepted\n"
                 f"ACMEActivation {activation}\nACMEDomain {NAME}\n" + h.ssl_vhost(NAME))
    return h


def real_serial(h):
    try:
        c = acmetest.tls_peer_cert(h.https_port, NAME, timeout=2)
    except Exception:  # noqa: BLE001 - not up yet
        return None
    return c.serial_number if c.issuer != c.subject else None


def wait_serial(h, other, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = real_serial(h)
        if s and s != other:
            return s
        time.sleep(0.005)
    raise RuntimeError(f"no new certificate served\n{h.log_text()[-3000:]}")


def start_to_served(workdir, pebble, activation, n):
    """Seconds from `apache2 -k start` to the first handshake serving the real certificate;
    and from acmectl renew to the renewed one served."""
    h = server(workdir, pebble, "start", activation, n)
    t0 = time.monotonic()
    h.start()
    try:
        first = wait_serial(h, None)
        t1 = time.monotonic()
        restarts = h.log_text().count("AH00493")
        if activation == "graceful":
            # Its next restart waits for the one-a-minute limit: not a figure of activation.
            return t1 - t0, None, restarts
        h.settle()
        r = subprocess.run([ACMECTL, "--store", h.store, "renew", NAME], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(r.stdout + r.stderr)
        t2 = time.monotonic()
        wait_serial(h, first)
        t3 = time.monotonic()
        restarts = h.log_text().count("AH00493")
    finally:
        h.stop()
    return t1 - t0, t3 - t2, restarts


def server_cpu(h):
    """CPU seconds (user + system) used so far by the server's processes."""
    ticks = 0
    for pid in h.processes():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def s_time(h, seconds, tls):
    """(full handshakes per wall-clock second, server CPU milliseconds per handshake). s_time
    reports its own CPU seconds, and real seconds rounded to a whole second: the wall clock is
    taken here."""
    cpu0 = server_cpu(h)
    t0 = time.monotonic()
    r = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{h.https_port}", "-new",
                        "-time", str(seconds), tls], capture_output=True, text=True,
                       timeout=seconds + 60)
    wall = time.monotonic() - t0
    cpu = server_cpu(h) - cpu0
    m = re.search(r"(\d+) connections in [0-9.]+ real seconds", r.stdout) or \
        re.search(r"(\d+) connections in [0-9.]+s", r.stdout)
    if not m or not int(m.group(1)):
        raise RuntimeError(r.stdout + r.stderr)
    n = int(m.group(1))
    return n / wall, 1000.0 * cpu / n


def handshake_servers(workdir, pebble, out):
    """Three running servers on three pebble-ports sets, into out (the caller stops them, also
    when this fails half-way): live (after a live renewal), graceful, and plain mod_ssl with the
    graceful server's files."""
    for activation in ("live", "graceful"):
        pb = pebble[activation]
        h = server(workdir, pb, "hs", activation, 0)
        out[activation] = h
        h.start()
        first = wait_serial(h, None)
        h.settle()
        h.wait_driver()
        if activation == "live":
            subprocess.run([ACMECTL, "--store", h.store, "renew", NAME], check=True,
                           capture_output=True, timeout=30)
            wait_serial(h, first)
            assert "AH00493" not in h.log_text()
    g = out["graceful"]
    live_dir = os.path.join(g.store, "domains", NAME)
    plain = acmetest.Httpd(os.path.join(workdir, "hs-plain"), pebble["plain"])
    files = os.path.join(plain.root, "files")
    os.makedirs(files, exist_ok=True)
    for f in ("fullchain.pem", "privkey.pem"):
        shutil.copy(os.path.join(live_dir, f), os.path.join(files, f))
    conf = plain.base_conf(ca=False)
    conf = "\n".join(l.replace(" acme:debug", "") for l in conf.splitlines()
                     if "acme_module" not in l and not l.startswith("ACME")) + "\n"
    with open(plain.conf_path, "w") as f:
        f.write(conf + plain.ssl_vhost(NAME, extra=(
            f"    SSLCertificateFile {files}/fullchain.pem\n"
            f"    SSLCertificateKeyFile {files}/privkey.pem\n")))
    out["plain"] = plain
    plain.start()
    plain.settle()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="mod_acme-bench-live-")
    os.chmod(workdir, 0o755)
    pebbles = {}
    try:
        for k in ("live", "graceful", "plain"):
            pebbles[k] = acmetest.Pebble(os.path.join(workdir, f"pebble-{k}"))
        print(f"1. start -> served and renewal -> served, one domain, {args.runs} alternating runs")
        res = {"live": [], "graceful": []}
        for n in range(args.runs):
            for activation in ("live", "graceful"):
                res[activation].append(start_to_served(workdir, pebbles[activation],
                                                       activation, n))
        for activation, rows in res.items():
            print(f"   {activation:9s} start -> served: median "
                  f"{statistics.median(r[0] for r in rows):.2f} s "
                  f"({', '.join(f'{r[0]:.2f}' for r in rows)}); graceful restarts per run: "
                  f"{', '.join(str(r[2]) for r in rows)}")
            if rows[0][1] is not None:
                print(f"   {activation:9s} acmectl renew -> new serial served: median "
                      f"{statistics.median(r[1] for r in rows):.2f} s "
                      f"({', '.join(f'{r[1]:.2f}' for r in rows)})")
        servers = {}
        try:
            handshake_servers(workdir, pebbles, servers)
            keys = list(servers)
            for tls in ("-tls1_3", "-tls1_2"):
                figs = {k: [] for k in servers}
                cpus = {k: [] for k in servers}
                for k in keys:  # warm-up: every child has loaded what it serves
                    s_time(servers[k], 1, tls)
                for r in range(args.runs):
                    # The order turns from run to run: none is always first after a pause.
                    for k in keys[r % len(keys):] + keys[:r % len(keys)]:
                        rate, cpu = s_time(servers[k], args.seconds, tls)
                        figs[k].append(rate)
                        cpus[k].append(cpu)
                med = {k: statistics.median(v) for k, v in figs.items()}
                mcpu = {k: statistics.median(v) for k, v in cpus.items()}
                print(f"2. full handshakes ({tls[1:]}, openssl s_time -new, "
                      f"{args.runs} alternating runs of {args.seconds} s):")
                for k, v in figs.items():
                    print(f"   {k:9s} per second: median {med[k]:8.1f}  "
                          f"({', '.join(f'{x:.1f}' for x in v)})")
                for k, v in cpus.items():
                    print(f"   {k:9s} server CPU ms per handshake: median {mcpu[k]:.3f}  "
                          f"({', '.join(f'{x:.3f}' for x in v)})")
                # Paired: the ratio of each round, whose runs follow each other within seconds,
                # so that a load that comes and goes moves both sides of a ratio alike.
                for other in ("graceful", "plain"):
                    rate = [figs["live"][r] / figs[other][r] for r in range(args.runs)]
                    cpu = [cpus[other][r] / cpus["live"][r] for r in range(args.runs)]
                    q = lambda v: statistics.quantiles(v, n=4) if len(v) > 1 else v * 3  # noqa
                    print(f"   live/{other}: per second, median of the rounds' ratios "
                          f"{statistics.median(rate):.3f}x (quartiles {q(rate)[0]:.3f}-"
                          f"{q(rate)[2]:.3f}); by server CPU per handshake "
                          f"{statistics.median(cpu):.3f}x (quartiles {q(cpu)[0]:.3f}-"
                          f"{q(cpu)[2]:.3f})")
        finally:
            for h in servers.values():
                h.stop()
    finally:
        for pb in pebbles.values():
            pb.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
