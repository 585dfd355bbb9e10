"""Shared helpers of the integration tests: ports, a CA for pebble's own listener, pebble and
pebble-challtestsrv as child processes stopped by PID, certificate checks and TLS/HTTP clients;
the server under test (Httpd) is in httpdtest.py and reachable here.

Only the standard library and Debian's python3-cryptography are used.
"""
import datetime
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"


def _port_block():
    """The ports this process picks from: below the kernel's ephemeral range (which it hands out
    for bind(0) and for outgoing connections, so none of those can take a port between our
    choice and its use), split in one block per pytest-xdist worker, so that workers running in
    parallel never pick the same port."""
    low = 20000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            high = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        high = 32768
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    count = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1), index + 1)
    size = (high - low) // count
    if size < 50:
        return None  # an odd ephemeral range: the kernel chooses
    return low + index * size, low + (index + 1) * size


_ports_given = set()  # handed out by this process: never twice
_port_rng = random.Random()  # a random start, so separate runs on one machine rarely meet


def free_ports(n):
    """n distinct TCP ports on 127.0.0.1 that nothing uses right now, from this process's block
    (_port_block) and never handed out before by it; all are held open while choosing."""
    socks = []
    block = _port_block()
    try:
        if block is None:
            for _ in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((LOOPBACK, 0))
                socks.append(s)
            return [s.getsockname()[1] for s in socks]
        low, high = block
        start = _port_rng.randrange(low, high)
        for i in range(high - low):
            if len(socks) == n:
                break
            port = low + (start - low + i) % (high - low)
            if port in _ports_given:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                s.close()
                continue
            socks.append(s)
        if len(socks) < n:
            raise RuntimeError(f"no {n} free ports left in {low}-{high - 1} on {LOOPBACK}")
        ports = [s.getsockname()[1] for s in socks]
        _ports_given.update(ports)
        return ports
    finally:
        for s in socks:
            s.close()


def free_port():
    return free_ports(1)[0]


def check_port_free(port, what, timeout=5.0):
    """Fails with a clear message when something listens on port (TIME_WAIT leftovers do not
    count: servers bind with SO_REUSEADDR). Waits a little first: a process killed with
    SIGKILL leaves /proc (its command line) before it has closed its sockets, and the larger
    its address space the longer that takes (much longer with the sanitizers' shadow memory)."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((LOOPBACK, port))
                return
            except OSError as e:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"port {port} on {LOOPBACK} (for {what}) is busy: {e}") from e
        time.sleep(0.05)


def wait_until(predicate, timeout, what):
    """Polls predicate until it returns a true value, which is returned; fails naming what was
    awaited (what: a text, or a function making one) when timeout seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what() if callable(what) else what}")
        time.sleep(0.05)


def require_root(why):
    """Skips the calling test when not root, saying so in pytest's summary (-ra): the
    integration tier is meant to run as root, as CI does."""
    if os.geteuid() != 0:
        import pytest
        reason = f"needs root ({why}); run the tests as root, as CI does"
        try:
            # Reported at the test's own line, as a skip mark would be, not at this one.
            skip = pytest.skip.Exception(reason, _use_item_location=True)
        except TypeError:  # a pytest without it
            skip = pytest.skip.Exception(reason)
        raise skip


def wait_port(port, proc, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")


def make_listener_ca(dirpath):
    """A small CA and a leaf for localhost/127.0.0.1: pebble ships no TLS certificate."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    # A name of its own: a client trusting the CAs of two pebbles finds each leaf's issuer by
    # name, and two CAs of one name would have one leaf checked with the other's key.
    ca_name = x509.Name([x509.NameAttribute(
        NameOID.COMMON_NAME, f"mod_acme test listener CA {os.urandom(4).hex()}")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {"ca": os.path.join(dirpath, "listener-ca.pem"),
             "cert": os.path.join(dirpath, "listener.pem"),
             "key": os.path.join(dirpath, "listener.key")}
    with open(paths["ca"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["cert"], "wb") as f:
        f.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(paths["key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths


class Proc:
    """A child process we started; stopped by its PID only."""

    def __init__(self, name, argv, logpath, env=None):
        self.name = name
        self.logpath = logpath
        self.log = open(logpath, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


class Pebble:
    """pebble-challtestsrv as DNS (every name -> 127.0.0.1) and pebble using it."""

    def __init__(self, workdir, always_valid=False, env_extra=None, http_port=None,
                 tls_port=None, validity=None, alternate_roots=0, eab_keys=None):
        """alternate_roots=N: besides its default chain, pebble offers N alternate chains for
        every certificate (PEBBLE_ALTERNATE_ROOTS: one intermediate cross-signed by N+1 roots,
        "Pebble Root CA <hex>"; root_pem(k) is the root of chain k, 0 the default's).
        eab_keys: {key ID: base64url MAC key}; with them pebble requires an external account
        binding (RFC 8555 section 7.3.4) in every newAccount."""
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.listener = make_listener_ca(workdir)
        ports = free_ports(6)
        self.port, self.mgmt_port, self.dns_port, self.dns_mgmt_port = ports[:4]
        self.http_port = http_port or ports[4]
        self.tls_port = tls_port or ports[5]
        cfg = {"pebble": {
            "listenAddress": f"{LOOPBACK}:{self.port}",
            "managementListenAddress": f"{LOOPBACK}:{self.mgmt_port}",
            "certificate": self.listener["cert"],
            "privateKey": self.listener["key"],
            "httpPort": self.http_port,
            "tlsPort": self.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }}
        if validity:
            cfg["pebble"]["certificateValidityPeriod"] = validity
        if eab_keys:
            cfg["pebble"]["externalAccountBindingRequired"] = True
            cfg["pebble"]["externalAccountMACKeys"] = dict(eab_keys)
        self.config = os.path.join(workdir, "pebble.json")
        with open(self.config, "w") as f:
            json.dump(cfg, f, indent=2)
        self.log = os.path.join(workdir, "pebble.log")
        self.dns = Proc("pebble-challtestsrv", [
            "pebble-challtestsrv", "-http01", "", "-https01", "", "-tlsalpn01", "",
            "-dns01", f"{LOOPBACK}:{self.dns_port}",
            "-management", f"{LOOPBACK}:{self.dns_mgmt_port}",
            "-defaultIPv4", LOOPBACK, "-defaultIPv6", ""],
            os.path.join(workdir, "challtestsrv.log"))
        wait_port(self.dns_mgmt_port, self.dns.proc, "pebble-challtestsrv")
        env = dict(os.environ)
        env["PEBBLE_VA_NOSLEEP"] = "1"
        if always_valid:
            env["PEBBLE_VA_ALWAYS_VALID"] = "1"
        if alternate_roots:
            env["PEBBLE_ALTERNATE_ROOTS"] = str(alternate_roots)
        env.update(env_extra or {})
        self.proc = Proc("pebble", ["pebble", "-config", self.config,
                                    "-dnsserver", f"{LOOPBACK}:{self.dns_port}"],
                         self.log, env=env)
        wait_port(self.port, self.proc.proc, "pebble")
        self.directory = f"https://{LOOPBACK}:{self.port}/dir"
        self.ca_file = self.listener["ca"]

    def _mgmt_get(self, path):
        ctx = ssl.create_default_context(cafile=self.ca_file)
        with urllib.request.urlopen(f"https://{LOOPBACK}:{self.mgmt_port}{path}",
                                    context=ctx, timeout=10) as r:
            return r.read()

    def root_pem(self, k=0):
        """Pebble makes a new root at every start: fetch it from the management port (k: the
        root of alternate chain k, with alternate_roots)."""
        return self._mgmt_get(f"/roots/{k}")

    def root_name(self, k=0):
        """The common name of root k (what ACMEPreferredChain names)."""
        cert = x509.load_pem_x509_certificate(self.root_pem(k))
        return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value

    def requests(self):
        """Requests pebble has handled, as "METHOD /path" (one '-> calling handler()' log line
        each), in order."""
        out = []
        with open(self.log, "r", errors="replace") as f:
            for line in f:
                if line.rstrip().endswith("-> calling handler()"):
                    out.append(" ".join(line.split()[3:5]))
        return out

    def request_count(self):
        return len(self.requests())

    def stop(self):
        self.proc.stop()
        self.dns.stop()


def split_pem_chain(data):
    """PEM blocks of a chain, as cryptography certificates, leaf first. (Debian 12's
    python3-cryptography 38 has no load_pem_x509_certificates.)"""
    end = b"-----END CERTIFICATE-----"
    certs = []
    for block in data.split(end)[:-1]:
        start = block.find(b"-----BEGIN CERTIFICATE-----")
        certs.append(x509.load_pem_x509_certificate(block[start:] + end + b"\n"))
    return certs


def san_names(cert):
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(n) for n in san.get_values_for_type(x509.DNSName)] + \
        [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def verify_chain(chain_path, root_pem, workdir):
    """openssl verify of the leaf against pebble's root with the rest of the chain untrusted.
    Returns (ok, output)."""
    certs = split_pem_chain(open(chain_path, "rb").read())
    leaf = os.path.join(workdir, "leaf.pem")
    untrusted = os.path.join(workdir, "untrusted.pem")
    root = os.path.join(workdir, "root.pem")
    with open(leaf, "wb") as f:
        f.write(certs[0].public_bytes(serialization.Encoding.PEM))
    with open(untrusted, "wb") as f:
        for c in certs[1:]:
            f.write(c.public_bytes(serialization.Encoding.PEM))
    with open(root, "wb") as f:
        f.write(root_pem)
    argv = ["openssl", "verify", "-CAfile", root]
    if len(certs) > 1:
        argv += ["-untrusted", untrusted]
    argv.append(leaf)
    r = subprocess.run(argv, capture_output=True, text=True)
    return r.returncode == 0, r.stdout + r.stderr


def tls_peer_cert(port, server_name, timeout=5.0, address=LOOPBACK):
    """The leaf certificate the server presents for server_name (no verification), and the
    chain as PEM when the server sends one. address: where to connect ("::1" for IPv6)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((address, port), timeout=timeout) as sock:
        with ctx.wrap_socket(sock, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der)


def https_get(port, host, path="/", cafile=None, timeout=5.0):
    """GET over TLS with SNI and Host = host; returns (status, headers, body). Verifies against
    cafile when given."""
    import http.client
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(LOOPBACK, port, context=ctx, timeout=timeout)
    conn._server_hostname = host  # SNI
    conn.server_hostname = host
    try:
        sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        conn.sock = ctx.wrap_socket(sock, server_hostname=host)
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def http_get(port, host, path, headers=None, timeout=5.0):
    import http.client
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


# The server under test lives in httpdtest.py (split for size); its names stay acmetest.<name>.
from httpdtest import (HTTPD_BIN, MODULES_DIR, SANITIZER_LINE, Httpd, _log_time,  # noqa: E402,F401
                       _PidProc, _start_time, module_path, public_dir, sanitizer_env,
                       sanitizer_output, sanitizer_reports, sanitizer_runtime)
