"""Cluster mode on loopback (docs/cluster.md): Debian's memcached or redis-server as the engine,
haproxy in front of several apache2 nodes on the port pebble validates (round robin), all
started by the test on free ports and stopped by PID. Shared by test_cluster.py and
tests/bench/cluster.py."""
import os
import pwd
import shutil
import signal
import threading
import time

import acmetest

ENGINES = {"memcache": "memcached", "redis": "redis-server"}


def missing_binaries(kind):
    """The programs this setup needs that are not installed (for a skip naming them)."""
    return [b for b in (ENGINES[kind], "haproxy") if not shutil.which(b)]


class Engine:
    """memcached or redis-server on a free loopback port, in the foreground, by PID."""

    def __init__(self, kind, workdir):
        self.kind = kind
        self.workdir = acmetest.public_dir(workdir, f"engine-{kind}")
        self.port = acmetest.free_port()
        self.proc = None
        self.start()

    @property
    def spec(self):
        return f"{self.kind}:127.0.0.1:{self.port}"

    def start(self):
        if self.kind == "memcache":
            argv = ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "16"]
            if os.geteuid() == 0:
                argv += ["-u", "root"]
        else:
            argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", self.workdir]
        acmetest.check_port_free(self.port, ENGINES[self.kind])
        self.proc = acmetest.Proc(ENGINES[self.kind], argv,
                                  os.path.join(self.workdir, "engine.log"))
        acmetest.wait_port(self.port, self.proc.proc, ENGINES[self.kind])

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None

    def restart(self):
        """Stopped and started again on the same port: every key is lost."""
        self.stop()
        self.start()


class Haproxy:
    """haproxy in http mode on port, round robin over the backends; a backend that is not up is
    left out by a TCP check every 300 ms, and one that refuses meanwhile is skipped (retries
    with redispatch: with three retries alone, concurrent validations could meet two stopped
    nodes four times in a row and get haproxy's 503)."""

    def __init__(self, workdir, port, backends):
        self.workdir = acmetest.public_dir(workdir, "haproxy")
        self.port = port
        cfg = os.path.join(self.workdir, "haproxy.cfg")
        servers = "".join(f"    server n{k} 127.0.0.1:{p}\n" for k, p in enumerate(backends, 1))
        with open(cfg, "w") as f:
            f.write("global\n    maxconn 256\n"
                    "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n"
                    "    timeout server 10s\n    retries 6\n    option redispatch 1\n"
                    "    default-server check inter 300ms fall 1 rise 1\n"
                    f"frontend validation\n    bind 127.0.0.1:{port}\n"
                    "    default_backend nodes\n"
                    f"backend nodes\n    balance roundrobin\n{servers}")
        acmetest.check_port_free(port, "haproxy")
        self.proc = acmetest.Proc("haproxy", ["haproxy", "-db", "-f", cfg],
                                  os.path.join(self.workdir, "haproxy.log"))
        acmetest.wait_port(port, self.proc.proc, "haproxy")

    def stop(self):
        self.proc.stop()


def shared_folder(workdir):
    """The folder the nodes share: the User's, closed to others (as the store's folders)."""
    path = os.path.join(acmetest.public_dir(workdir, "cluster"), "shared")
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o700)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("www-data")
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


def node_conf(h, ca_directory, ca_file, engine, shared, k, names, lease, activation="graceful"):
    h.cluster_shared = shared
    extra = ("socache_memcache",) if engine.kind == "memcache" else ("socache_redis",)
    h.write_conf(f"ACMECertificateAuthority {ca_directory}\n"
                 f"ACMEActivation {activation}\n"
                 f"ACMECACertificateFile {ca_file}\n"
                 "ACMEContactEmail admin@cluster.test\nACMEAgreement accepted\n"
                 "ACMEChallenges http-01\n"
                 f"ACMEChallengeCache {engine.spec}\n"
                 f"ACMECluster {engine.spec} {shared} node=n{k} lease={lease}\n"
                 f"ACMEDomain {' '.join(names)}\n" + h.ssl_vhost(names[0], names[1:]),
                 extra_modules=extra, ca=False)


def start_all(nodes):
    """Starts the nodes at the same moment (one thread each); raises the first failure."""
    errors = []
    barrier = threading.Barrier(len(nodes))

    def run(h):
        try:
            barrier.wait()
            h.start()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(h,)) for h in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def served_serial(h, name):
    """The serial of the CA's certificate node h serves for name, or None (fallback, down)."""
    try:
        c = acmetest.tls_peer_cert(h.https_port, name, timeout=2)
    except Exception:  # noqa: BLE001 - not serving yet
        return None
    return c.serial_number if c.issuer != c.subject else None


def holder(nodes):
    """The node whose log says it took the order lease, or None."""
    for h in nodes:
        if "ACME04001" in h.log_text():
            return h
    return None


def kill_node(h):
    """kill -9 of every process of node h (parent and children), by PID."""
    for pid in h.processes():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    acmetest.wait_until(lambda: not h.processes() or None, 10, "the killed node's processes gone")
    try:
        os.unlink(h.pid_file)
    except OSError:
        pass


def wait_all_serve(nodes, name, timeout, serial=None):
    """Waits until every node serves one CA certificate for name (serial, when given); returns
    (serial, seconds waited)."""
    t0 = time.monotonic()

    def same():
        serials = {served_serial(h, name) for h in nodes}
        if len(serials) == 1 and None not in serials and (serial is None or serial in serials):
            return serials.pop()
        return None

    got = acmetest.wait_until(same, timeout, lambda: "every node serving one certificate: " + str(
        [served_serial(h, name) for h in nodes]) + "\n" + "\n".join(
        h.log_text()[-2500:] for h in nodes))
    return got, time.monotonic() - t0
