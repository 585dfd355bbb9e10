"""Shared helpers of the integration tests: ports, a CA for pebble's own listener, pebble and
pebble-challtestsrv as child processes stopped by PID, and certificate checks.

Only the standard library and Debian's python3-cryptography are used.
"""
import datetime
import json
import os
import random
import re
import shutil
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


MODULES_DIR = "/usr/lib/apache2/modules"
HTTPD_BIN = "/usr/sbin/apache2"


def module_path():
    build = os.environ.get("top_builddir") or os.path.abspath(
        os.path.join(os.path.dirname(__file__), "..", ".."))
    return os.path.join(build, ".libs", "mod_acme.so")


_SANITIZER_RUNTIME = []


def sanitizer_runtime():
    """Path of the ASan runtime when the module was built with ./configure --enable-sanitizers,
    else None. apache2 is not instrumented, so the runtime must be preloaded into it (it has to
    come first among the libraries). make check sets ACME_SANITIZER_RUNTIME; a hand-run pytest
    reads what configure found from the build's Makefile."""
    if not _SANITIZER_RUNTIME:
        path = os.environ.get("ACME_SANITIZER_RUNTIME") or None
        makefile = os.path.join(os.path.dirname(os.path.dirname(module_path())), "Makefile")
        if path is None and os.path.exists(makefile):
            with open(makefile) as f:
                for line in f:
                    if line.startswith("SAN_RUNTIME = "):
                        path = line.split("=", 1)[1].strip() or None
        _SANITIZER_RUNTIME.append(path)
    return _SANITIZER_RUNTIME[0]


def sanitizer_env(logdir, env=None):
    """The environment for apache2 with the sanitized module: the runtime preloaded and ASan's
    reports written to files logdir/report.PID, which the root parent and the children running
    as the User can both create. UBSan (gcc's libubsan beside a preloaded libasan) ignores
    log_path and writes to stderr, which is httpd's error log: sanitizer_reports() reads both.

    Leak detection is off in httpd: Debian's APR takes pool memory from mmap(), which
    LeakSanitizer does not scan, so everything a pool cleanup owns (our keys and certificates,
    mod_ssl's contexts) is reported as lost when a process exits without destroying its pools,
    as httpd's children and its daemonizing parent do. Growth while the server runs is measured
    by tests/bench/soak.py; the core's leaks by LeakSanitizer in the unit tier and in acme-drive,
    and by make check-valgrind."""
    env = dict(os.environ if env is None else env)
    runtime = sanitizer_runtime()
    if not runtime:
        return env
    env["LD_PRELOAD"] = runtime
    # use_sigaltstack=0: on some machines gcc 12's runtime reports a stack-use-after-scope inside
    # its own sigaltstack interceptor when any thread of httpd exits (its report names no frame of
    # ours; main's tests and ours then pass with no report).
    env["ASAN_OPTIONS"] = f"log_path={logdir}/report:detect_leaks=0:use_sigaltstack=0"
    # The same log_path: with gcc the runtime loaded last decides where ASan's reports go.
    env["UBSAN_OPTIONS"] = f"log_path={logdir}/report:print_stacktrace=1:halt_on_error=0"
    return env


SANITIZER_LINE = re.compile(r"runtime error: |ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|"
                            r"SUMMARY: \w+Sanitizer")


def sanitizer_output(text):
    """Sanitizer reports found in a program's output (stderr, error log): each report line with
    the stack lines after it."""
    out = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if SANITIZER_LINE.search(line):
            j = i + 1
            while j < len(lines) and lines[j].lstrip().startswith("#"):
                j += 1
            out.append("\n".join(lines[i:j]))
    return out


def sanitizer_reports(logdir, error_log=None):
    """(where, text) of every sanitizer report: files written to logdir, and reports in the
    error log."""
    out = []
    try:
        names = sorted(os.listdir(logdir))
    except OSError:
        names = []
    for n in names:
        with open(os.path.join(logdir, n), errors="replace") as f:
            out.append((os.path.join(logdir, n), f.read()))
    if error_log and os.path.exists(error_log):
        with open(error_log, errors="replace") as f:
            out += [(error_log, r) for r in sanitizer_output(f.read())]
    return out


def public_dir(parent, name):
    """A folder the server's User (www-data) can reach: every level down to it must be
    traversable, which pytest's own temporary folders are not."""
    path = os.path.join(parent, name)
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)
    return path


class Httpd:
    """Debian's apache2 with mod_acme, on loopback, configured by the test. Started and stopped
    by PID (its PidFile). With a sanitizer build, reports go to the folder `sanitizer/` of the
    server (see sanitizer_env); Httpd.made lists every server, for the check after each test."""

    made = []

    def __init__(self, root, pebble, mpm="event", user="www-data"):
        self.root = public_dir(os.path.dirname(root), os.path.basename(root))
        self.pebble = pebble
        self.mpm = mpm
        self.user = user if os.geteuid() == 0 else None
        self.http_port = pebble.http_port
        self.https_port = pebble.tls_port
        self.conf_path = os.path.join(self.root, "httpd.conf")
        self.error_log = os.path.join(self.root, "error.log")
        self.pid_file = os.path.join(self.root, "httpd.pid")
        self.docroot = public_dir(self.root, "htdocs")
        with open(os.path.join(self.docroot, "index.html"), "w") as f:
            f.write("hello from the test vhost\n")
        self.store = os.path.join(self.root, "acme")
        self.started_pids = set()
        self.sanitizer_dir = os.path.join(self.root, "sanitizer")
        self.sanitizer_stderr = []  # (args, report) from the output of run()
        if sanitizer_runtime():
            os.makedirs(self.sanitizer_dir, exist_ok=True)
            # Written by the root parent and by the children running as the User.
            os.chmod(self.sanitizer_dir, 0o1777)
        Httpd.made.append(self)

    def env(self):
        """The environment apache2 runs with (the sanitizer runtime preloaded, when built so)."""
        return sanitizer_env(self.sanitizer_dir)

    def sanitizer_reports(self):
        return sanitizer_reports(self.sanitizer_dir, self.error_log) + \
            [("apache2 " + " ".join(a), r) for a, r in self.sanitizer_stderr]

    def base_conf(self, extra_modules=(), ca=True, plain=True):
        """The server's configuration up to the test's own lines; plain=False leaves out the
        plain-HTTP listener (pebble's httpPort), so that only the TLS port answers."""
        mods = ["mpm_" + self.mpm, "authz_core", "authz_host", "mime", "dir",
                "socache_shmcb", "ssl", "setenvif"]
        mods += list(extra_modules)
        lines = [f"ServerRoot {self.root}", f"PidFile {self.pid_file}",
                 f"ErrorLog {self.error_log}", "LogLevel info acme:debug ssl:warn",
                 *([f"Listen 127.0.0.1:{self.http_port}"] if plain else []),
                 f"Listen 127.0.0.1:{self.https_port}",
                 "ServerName localhost", f"DocumentRoot {self.docroot}",
                 "TypesConfig /etc/mime.types",
                 "Mutex file:" + self.root + " default", "StartServers 2",
                 "GracefulShutdownTimeout 5",
                 # No child is started after the first ones: httpd's children deadlock on a
                 # SIGTERM while they start up (the signal handler frees memory), so children
                 # started later could turn a stop into AH00046 (SIGKILL).
                 *(["MinSpareThreads 25", "MaxSpareThreads 75"] if self.mpm == "event" else
                   ["MinSpareServers 1", "MaxSpareServers 4"] if self.mpm == "prefork" else []),
                 "LogFormat \"%h %{Host}i %r %>s %b %{Connection}o\" acmetest",
                 f"CustomLog {self.root}/access.log acmetest"]
        if sanitizer_runtime():
            # Keeps the children dumpable after they become the User: without it they cannot
            # read their own /proc/self/maps and a report ends after its first line.
            lines.append(f"CoreDumpDirectory {self.sanitizer_dir}")
        lines = [f"LoadModule {m}_module {MODULES_DIR}/mod_{m}.so" for m in mods] + lines
        lines.append(f"LoadModule acme_module {module_path()}")
        if self.user:
            lines += [f"User {self.user}", f"Group {self.user}"]
        if ca:
            lines += [f"ACMECertificateAuthority {self.pebble.directory}",
                      f"ACMECACertificateFile {self.pebble.ca_file}"]
        lines += [f"ACMEStoreDir {self.store}"]
        return "\n".join(lines) + "\n"

    def write_conf(self, body, extra_modules=(), ca=True, plain=True):
        with open(self.conf_path, "w") as f:
            f.write(self.base_conf(extra_modules, ca, plain) + body)

    def ssl_vhost(self, name, aliases=(), extra=""):
        alias = f"    ServerAlias {' '.join(aliases)}\n" if aliases else ""
        return (f"<VirtualHost 127.0.0.1:{self.https_port}>\n    ServerName {name}\n{alias}"
                f"    SSLEngine on\n{extra}</VirtualHost>\n")

    def run(self, *args):
        r = subprocess.run([HTTPD_BIN, "-d", self.root, "-f", self.conf_path, *args],
                           capture_output=True, text=True, timeout=60, env=self.env())
        self.sanitizer_stderr += [(args, rep) for rep in sanitizer_output(r.stdout + r.stderr)]
        return r

    def configtest(self):
        return self.run("-t")

    def pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def start(self):
        if f"Listen 127.0.0.1:{self.http_port}\n" in open(self.conf_path).read():
            check_port_free(self.http_port, "httpd http")
        check_port_free(self.https_port, "httpd https")
        # A PID file left by a killed server names a dead process: not ours to wait for.
        old = self.pid()
        if old and old not in self.processes():
            os.unlink(self.pid_file)
        r = self.run("-k", "start")
        if r.returncode != 0:
            raise RuntimeError(f"httpd did not start: {r.stdout}{r.stderr}\n{self.log_text()}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self.pid():
            time.sleep(0.05)
        pid = self.pid()
        if not pid:
            raise RuntimeError(f"httpd wrote no PID file\n{self.log_text()}")
        self.started_pids.add(pid)
        wait_port(self.https_port, _PidProc(pid), "httpd")
        return pid

    def signal(self, sig):
        pid = self.pid()
        if pid:
            os.kill(pid, sig)

    def graceful(self):
        self.signal(signal.SIGUSR1)

    def _youngest_child_age(self):
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        ages = []
        for c in self.children():
            try:
                with open(f"/proc/{c}/stat") as f:
                    start = int(f.read().rsplit(")", 1)[1].split()[19]) / ticks
                ages.append(uptime - start)
            except (OSError, IndexError, ValueError):
                continue
        return min(ages) if ages else 99.0

    def settle(self, min_age=1.0, timeout=5.0):
        """Waits until every child has run for min_age seconds. httpd's children are not safe
        against SIGTERM while they start up (the event MPM's signal handler frees memory, which
        deadlocks a child caught inside malloc), so tests never stop a server that has just
        restarted."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._youngest_child_age() < min_age:
            time.sleep(0.1)

    def _restart_under_way(self):
        """The driver asked for an automatic restart (its flag is in staging/) or the parent
        tests the configuration for one (an `-t` process of our configuration)."""
        if os.path.exists(os.path.join(self.store, "staging", "restart.wanted")):
            return True
        for p in self.processes():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    if b"-t" in f.read().split(b"\0"):
                        return True
            except OSError:
                continue
        return False

    def quiesce(self, timeout=5.0):
        """Waits while an automatic restart is under way, and for the children it starts to
        settle: a test that ends the moment a set is staged would otherwise stop the server in
        the middle of the restart that activates it (the driver asks for it within
        milliseconds), and meet children still starting (settle)."""
        def staged_unanswered():
            # A set staged just now (its ACME01054 the last of these tags): the driver asks for
            # its restart within milliseconds (ACME01059), or says it waits for a batch
            # (ACME01067).
            text = self.log_text()
            return max(("ACME01054", "ACME01059", "ACME01067"), key=text.rfind) == "ACME01054" \
                and "ACME01054" in text

        def restarted():
            # One more generation than automatic restarts asked: AH00489 at the start and after
            # each restart, ACME01070 before each automatic one.
            text = self.log_text()
            return text.count("AH00489") >= 1 + text.count("ACME01070")

        for predicate, seconds in ((lambda: not staged_unanswered(), 1.0),
                                   (lambda: not self._restart_under_way(), timeout),
                                   (restarted, timeout)):
            try:
                wait_until(predicate, seconds, "quiet")
            except AssertionError:
                pass  # best effort: the stop goes on
        self.settle()

    def stop(self):
        """Stops the server we started, by PID, and waits until none of its processes is
        left (children included)."""
        pid = self.pid()
        if pid:
            self.quiesce()
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
        resend = time.monotonic() + 2
        dumped = False
        while time.monotonic() < deadline and self.processes():
            # httpd loses a SIGTERM that arrives while the parent reads its configuration for a
            # graceful restart (the MPM clears shutdown_pending when the new generation starts;
            # docs/apache.md): the parent still there after 2 s is told again.
            if pid and time.monotonic() > resend and pid in self.processes():
                resend = time.monotonic() + 2
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            if not dumped and time.monotonic() > deadline - 12 and shutil.which("gdb"):
                # A child that does not stop is a bug worth a stack trace in the test folder.
                dumped = True
                with open(os.path.join(self.root, "stuck-stacks.txt"), "w") as f:
                    for p in self.processes():
                        if p == pid:
                            continue
                        r = subprocess.run(["gdb", "-p", str(p), "-batch", "-ex",
                                            "thread apply all bt 40"], capture_output=True,
                                           text=True, timeout=60)
                        f.write(f"=== {p}\n{r.stdout}\n")
            time.sleep(0.05)

    def processes(self):
        """PIDs of every process (parent and children) running our configuration, found by
        the configuration path on their command line, so that children left behind by a dead
        parent are found too."""
        out = []
        needle = self.conf_path.encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        out.append(int(entry))
            except OSError:
                continue
        return out

    def kill_all(self, timeout=10):
        """kill -9 of the parent and every child, again until none is left (the parent may fork
        a child between our listing and its kill). Asserts that none is left."""
        deadline = time.monotonic() + timeout
        while self.processes() and time.monotonic() < deadline:
            for pid in self.processes():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        assert not self.processes(), f"processes left after kill -9: {self.processes()}"

    def children(self):
        """PIDs of the children of the running parent."""
        pid = self.pid()
        return [p for p in self.processes() if p != pid]

    def driver_pid(self):
        """PID of the process holding the renewal driver's lock (jobs/driver.lock in the
        store), from /proc/locks; None when nobody holds it."""
        try:
            st = os.stat(os.path.join(self.store, "jobs", "driver.lock"))
        except OSError:
            return None
        ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        try:
            with open("/proc/locks") as f:
                for line in f:
                    # "1: POSIX  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"; waiters have "->"
                    parts = line.split()
                    if len(parts) >= 6 and parts[1] != "->" and parts[5] == ident:
                        return int(parts[4])
        except (OSError, ValueError):
            pass
        return None

    def generation_started(self):
        """Wall-clock time after which every child the parent starts belongs to the running
        generation: 0 before the first graceful restart; after one (AH00493), the moment the
        new generation was configured (AH00489; its children are started after that, those of
        the old one before the restart), or infinity while that is not in the log yet."""
        lines = self.log_text().splitlines()
        restarts = [i for i, line in enumerate(lines) if "AH00493" in line]
        if not restarts:
            return 0.0
        for line in lines[restarts[-1]:]:
            if "AH00489" in line:
                return _log_time(line) - 0.05  # /proc's start times are to a clock tick
        return float("inf")

    def wait_driver(self, timeout=30.0):
        """Waits until the renewal driver of the running generation (a child started after the
        last restart in the log: call this once the restart is logged) holds its lock, and
        returns its PID. The driver takes the lock in its first round, which starts the work
        that is due (an ACME01062 line per domain) in the same pass and ends with ACME02304:
        from here on, work that was not started was not due."""
        def holder():
            pid = self.driver_pid()
            if not pid or pid not in self.children():
                return None
            started = _start_time(pid)
            return pid if started and started > self.generation_started() else None

        pid = wait_until(holder, timeout, lambda: f"a renewal driver of {self.conf_path} holding "
                                                  f"jobs/driver.lock\n{self.log_text()[-3000:]}")
        # The pass that took the lock ends with ACME02304 (debug) from that process.
        wait_until(lambda: any("ACME02304" in line and f"[pid {pid}:" in line
                               for line in self.log_text().splitlines()), timeout,
                   lambda: f"the first pass of the renewal driver {pid}\n"
                           f"{self.log_text()[-3000:]}")
        return pid

    def log_text(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, needle, timeout=30.0, count=1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_text().count(needle) >= count:
                return True
            time.sleep(0.05)
        return False

    def unexpected_errors(self, allowed=()):
        bad = []
        for line in self.log_text().splitlines():
            if ":error]" in line or ":emerg]" in line or ":crit]" in line or ":alert]" in line:
                if not any(a in line for a in allowed):
                    bad.append(line)
        return bad


def _start_time(pid):
    """Wall-clock time at which process pid started (to a clock tick); None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")


def _log_time(line):
    """The time of an error log line ("[Sun Nov 29 09:45:01.218298 2026] ..."), or 0."""
    try:
        stamp = line[1:line.index("]")]
        return datetime.datetime.strptime(stamp, "%a %b %d %H:%M:%S.%f %Y").timestamp()
    except ValueError:
        return 0.0


class _PidProc:
    """poll() for a PID we did not spawn as a child (httpd daemonizes)."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        try:
            os.kill(self.pid, 0)
            return None
        except ProcessLookupError:
            self.returncode = -1
            return -1


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
