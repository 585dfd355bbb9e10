"""Instructions per TLS handshake of the server, ACMEActivation live against graceful and against
plain mod_ssl, counted by valgrind's callgrind: a figure that, unlike handshakes per second,
does not move with whatever else runs on the machine. Prints figures and ratios; asserts
nothing.

    /usr/bin/python3 tests/bench/live_instr.py [--handshakes 200]

Each server runs under `valgrind --tool=callgrind`, the prefork MPM with one child (which also
runs the renewal driver), counting only inside SSL_accept (mod_ssl's server side of the
handshake, with the SNI and certificate callbacks in it: not the driver's ticks, not the
requests). The live server gets its certificate and then a renewal served live (acmectl
renew), so that every handshake goes through the certificate callback installing the set
published live; the graceful server serves its certificate through mod_ssl's own; the plain
server is mod_ssl alone with the graceful server's files. A request for a page that does not
exist makes the child dump its counters (callgrind --dump-before=ap_send_error_response: an
error response is the only place it runs): after a warm-up, then after N TLS 1.3 handshakes
(new connection each, no session resumption), then after N TLS 1.2 handshakes. Each dump also
holds the handshake of the request that made the next one: N + 1 handshakes.
"""
import argparse
import glob
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import acmetest  # noqa: E402
import live  # noqa: E402  (tests/bench/live.py: server(), wait_serial(), NAME, ACMECTL)


class CallgrindHttpd(acmetest.Httpd):
    """acmetest.Httpd started under callgrind."""

    def __init__(self, root, pebble, outdir, **kw):
        super().__init__(root, pebble, **kw)
        self.outdir = outdir

    def run(self, *args):
        if args[:2] != ("-k", "start"):
            return super().run(*args)
        # Only what runs inside SSL_accept (mod_ssl's server handshake, with the SNI and
        # certificate callbacks) is counted: not the renewal driver's ticks, not the requests.
        cmd = ["valgrind", "--tool=callgrind", "--trace-children=no", "--collect-atstart=no",
               "--toggle-collect=SSL_accept", "--dump-before=ap_send_error_response",
               f"--callgrind-out-file={self.outdir}/cg.%p", f"--log-file={self.outdir}/vg.%p",
               acmetest.HTTPD_BIN, "-d", self.root, "-f", self.conf_path, *args]
        # No pipes: the daemon under valgrind would hold them open, and the call never end.
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=300, env=self.env())


def handshakes(port, n, tls):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = tls
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            with ctx.wrap_socket(sock, server_hostname=live.NAME, session=None) as t:
                t.getpeercert(binary_form=True)


def trigger(port):
    """A request for a page that does not exist: the child dumps its counters."""
    code, _, _ = acmetest.https_get(port, live.NAME, path="/no-such-page-bench", timeout=60)
    assert code == 404, code


def dumps(h):
    """The child's dump files, oldest first."""
    pid = h.children()[0]
    files = glob.glob(f"{h.outdir}/cg.{pid}.*")
    return sorted(files, key=lambda f: int(f.rsplit(".", 1)[1]))


def wait_dumps(h, n, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = dumps(h)
        if len(files) >= n:
            return files
        time.sleep(0.2)
    raise RuntimeError(f"{h.root}: {len(dumps(h))} callgrind dumps, expected {n}")


def instructions(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def measure(h, n):
    """{TLS version label: Ir per handshake}."""
    assert len(h.children()) == 1, h.children()
    handshakes(h.https_port, 10, ssl.TLSVersion.TLSv1_3)  # warm-up
    trigger(h.https_port)
    base = len(wait_dumps(h, 1))
    out = {}
    for tls, label in ((ssl.TLSVersion.TLSv1_3, "TLS 1.3"), (ssl.TLSVersion.TLSv1_2, "TLS 1.2")):
        handshakes(h.https_port, n, tls)
        trigger(h.https_port)
        base += 1
        out[label] = instructions(wait_dumps(h, base)[base - 1]) / (n + 1)
    return out


def one_child(h):
    """The prefork MPM with exactly one child."""
    with open(h.conf_path) as f:
        conf = f.read()
    conf = conf.replace("StartServers 2", "StartServers 1").replace("MaxSpareServers 4",
                                                                    "MaxSpareServers 1")
    with open(h.conf_path, "w") as f:
        f.write(conf + "ServerLimit 1\nMaxRequestWorkers 1\n")


def make(workdir, pebble, kind):
    outdir = os.path.join(workdir, f"cg-{kind}")
    os.makedirs(outdir, exist_ok=True)
    os.chmod(outdir, 0o777)  # the child, as the User, writes its dumps there
    if kind == "plain":
        return outdir
    h = CallgrindHttpd(os.path.join(workdir, kind), pebble, outdir, mpm="prefork")
    h.write_conf("ACMEContactEmail admin@bench.test\nACMEAgreement accepted\n"
                 f"ACMEActivation {kind}\nACMEDomain {live.NAME}\n" + h.ssl_vhost(live.NAME))
    one_child(h)
    return h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--handshakes", type=int, default=200)
    args = ap.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        sys.exit("valgrind (with callgrind_control) is needed: apt-get install valgrind")
    workdir = tempfile.mkdtemp(prefix="mod_acme-bench-instr-")
    os.chmod(workdir, 0o755)
    pebbles, servers = {}, {}
    try:
        for k in ("live", "graceful", "plain"):
            pebbles[k] = acmetest.Pebble(os.path.join(workdir, f"pebble-{k}"))
        for kind in ("live", "graceful"):
            h = make(workdir, pebbles[kind], kind)
            servers[kind] = h
            h.start()
            first = live.wait_serial(h, None, timeout=300)
            h.settle(min_age=2.0, timeout=60)
            if kind == "live":
                subprocess.run([live.ACMECTL, "--store", h.store, "renew", live.NAME],
                               check=True, capture_output=True, timeout=30)
                live.wait_serial(h, first, timeout=300)
                assert "AH00171" not in h.log_text(), "a graceful restart happened"
        g = servers["graceful"]
        plain = CallgrindHttpd(os.path.join(workdir, "plain"), pebbles["plain"],
                               os.path.join(workdir, "cg-plain"), mpm="prefork")
        os.makedirs(plain.outdir, exist_ok=True)
        os.chmod(plain.outdir, 0o777)
        files = os.path.join(plain.root, "files")
        os.makedirs(files, exist_ok=True)
        for f in ("fullchain.pem", "privkey.pem"):
            shutil.copy(os.path.join(g.store, "domains", live.NAME, f), os.path.join(files, f))
        conf = plain.base_conf(ca=False)
        conf = "\n".join(li.replace(" acme:debug", "") for li in conf.splitlines()
                         if "acme_module" not in li and not li.startswith("ACME")) + "\n"
        with open(plain.conf_path, "w") as f:
            f.write(conf + plain.ssl_vhost(live.NAME, extra=(
                f"    SSLCertificateFile {files}/fullchain.pem\n"
                f"    SSLCertificateKeyFile {files}/privkey.pem\n")))
        one_child(plain)
        servers["plain"] = plain
        plain.start()
        plain.settle(min_age=2.0, timeout=60)
        print(f"Server instructions per full handshake (callgrind Ir inside SSL_accept, prefork "
              f"with one child, {args.handshakes} + 1 handshakes after a warm-up)")
        ir = {k: measure(h, args.handshakes) for k, h in servers.items()}
        for label in ("TLS 1.3", "TLS 1.2"):
            print(f"  {label}: " + ", ".join(f"{k} {v[label] / 1e6:.4f} M" for k, v in ir.items()))
            print(f"  {label}: live/graceful {ir['graceful'][label] / ir['live'][label]:.4f}x, "
                  f"live/plain {ir['plain'][label] / ir['live'][label]:.4f}x (inverse ratio of "
                  f"instructions: handshakes per second at equal speed per instruction)")
    finally:
        for h in servers.values():
            try:
                h.stop()
            except Exception as e:  # noqa: BLE001 - go on stopping the others
                print(f"stopping {h.root}: {e}", file=sys.stderr)
        for pb in pebbles.values():
            pb.stop()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
