"""The server under test for the integration tests: Debian's apache2 with the built mod_acme,
started and stopped by PID (class Httpd), and the sanitizer build's reports. Split out of
acmetest.py for size; tests reach everything here as acmetest.<name> (import acmetest, not this
module, first).
"""
import datetime
import os
import re
import shutil
import signal
import subprocess
import time

from acmetest import check_port_free, wait_port, wait_until


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
