"""Shared helpers of the integration tests: ports, a CA for pebble's own listener, pebble and
pebble-challtestsrv as child processes stopped by PID, and certificate checks.

Only the standard library and Debian's python3-cryptography are used.
"""
import datetime
import json
import os
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


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def check_port_free(port, what):
    """Fails with a clear message when port is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError as e:
            raise RuntimeError(f"port {port} on {LOOPBACK} (for {what}) is busy: {e}") from e


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
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mod_acme test listener CA")])
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
                 tls_port=None, validity=None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.listener = make_listener_ca(workdir)
        self.port = free_port()
        self.mgmt_port = free_port()
        self.dns_port = free_port()
        self.dns_mgmt_port = free_port()
        self.http_port = http_port or free_port()
        self.tls_port = tls_port or free_port()
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

    def root_pem(self):
        """Pebble makes a new root at every start: fetch it from the management port."""
        return self._mgmt_get("/roots/0")

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
