"""The renewal driver against what goes wrong around it: a CA that never answers while the server
stops, a lock file that cannot be opened, an earlier generation that records a backoff or stages
a set after this one started, and a staged set that the parent refuses (issue 7, defects 1, 7, 8
and 13)."""
import fcntl
import json
import os
import pwd
import socket
import threading
import time

import pytest

import acmetest
from test_httpd import ACCOUNT, issuer_is_self


class HangingCA:
    """A TCP listener that accepts connections and never answers: a CA that hangs."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((acmetest.LOOPBACK, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.directory = f"https://{acmetest.LOOPBACK}:{self.port}/dir"
        self.accepted = threading.Event()
        self.conns = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            self.accepted.set()

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def wait_gone(h, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and h.processes():
        time.sleep(0.02)
    return h.processes()


@pytest.mark.parametrize("how,mpm", [("stop", "event"), ("graceful-stop", "event"),
                                     ("stop", "prefork")])
def test_stop_aborts_requests_to_a_hanging_ca(httpd_factory, how, mpm):
    """`apache2 -k stop` (or graceful-stop) while a worker waits for a CA that never answers:
    the request is abandoned at once, every process leaves, and httpd has to kill nothing."""
    ca = HangingCA()
    try:
        h = httpd_factory(mpm=mpm)
        h.write_conf(f"ACMECertificateAuthority {ca.directory}\n"
                     f"ACMECACertificateFile {h.pebble.ca_file}\n" + ACCOUNT +
                     "ACMEDomain hang.test\n" + h.ssl_vhost("hang.test"), ca=False)
        h.start()
        assert ca.accepted.wait(20), "the worker never reached the CA\n" + h.log_text()[-2000:]
        h.settle()
        r = h.run("-k", how)
        assert r.returncode == 0, r.stdout + r.stderr
        left = wait_gone(h)
        log = h.log_text()
        assert not left, f"processes left: {left}\n{log[-3000:]}"
        assert "ACME02300: hang.test: the server is stopping: the work with " \
               f"{ca.directory} was abandoned" in log, log[-3000:]
        assert "AH00046" not in log and "ACME02301" not in log, log[-3000:]
    finally:
        ca.close()


def user_ids():
    pw = pwd.getpwnam("www-data")
    return pw.pw_uid, pw.pw_gid


def give_to_user(path):
    """What the server's User would have written is the User's."""
    uid, gid = user_ids()
    os.chown(path, uid, gid)


def children_rss_kib(h):
    total = 0
    for pid in h.children():
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def test_unopenable_lock_file_does_not_grow_memory(httpd_factory):
    """While jobs/driver.lock cannot be opened (here: it is a folder), the driver says so once
    a minute and retries every tick; its memory must stay flat. The store's path is made long
    (about 3000 characters) so that a path string kept per tick would be plain to see: 10 ticks
    a second of 3 KB each."""
    h = httpd_factory()
    deep = h.root
    while len(deep) < 3000:
        deep = os.path.join(deep, "d" * 200)
    h.store = os.path.join(deep, "acme")
    os.makedirs(os.path.join(h.store, "jobs", "driver.lock"))
    for d in [h.store] + [os.path.dirname(h.store)]:
        os.chmod(d, 0o755)
    p = os.path.dirname(h.store)
    while p != h.root:
        os.chmod(p, 0o755)
        p = os.path.dirname(p)
    h.write_conf(ACCOUNT + "ACMEDomain lock.test\n" + h.ssl_vhost("lock.test"))
    h.allowed_errors.append("ACME01056")
    h.start()
    assert h.wait_log("ACME01056", timeout=20), h.log_text()[-2000:]
    h.settle()
    window = 10.0
    before = children_rss_kib(h)
    time.sleep(window)  # a rate is measured over time: no event marks its end
    grown = children_rss_kib(h) - before
    leak_kib = window * 10 * (len(h.store) + len("/jobs/driver.lock")) / 1024
    assert grown < leak_kib / 3, (
        f"the children grew by {grown} KiB in {window} s while the lock file could not be "
        f"opened (a path kept per tick would be about {leak_kib:.0f} KiB)")
    assert h.log_text().count("ACME01056") == 1
    assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "lock.test"))


class HeldLock:
    """The test holds jobs/driver.lock as a driver of an earlier generation would."""

    def __init__(self, store):
        jobs = os.path.join(store, "jobs")
        os.makedirs(jobs, exist_ok=True)
        path = os.path.join(jobs, "driver.lock")
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        give_to_user(path)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def test_backoff_recorded_by_an_earlier_generation_is_obeyed(httpd_factory):
    """The previous generation's driver records a failure (next attempt in an hour) after this
    generation's driver started but before it got the lock: no order until then."""
    h = httpd_factory()
    lock = HeldLock(h.store)
    try:
        h.write_conf(ACCOUNT + "ACMEDomain late.test\n" + h.ssl_vhost("late.test"))
        h.start()
        assert h.wait_log("ACME01057", timeout=20), h.log_text()[-2000:]
        job = os.path.join(h.store, "jobs", "late.test.json")
        now = int(time.time())
        with open(job, "w") as f:
            json.dump({"failures": 1, "next-run": now + 3600, "last-error": "serverInternal",
                       "last-error-time": now, "challenges": []}, f)
        give_to_user(job)
    finally:
        lock.release()
    assert h.wait_log("ACME02304", timeout=20), h.log_text()[-2000:]
    log = h.log_text()
    assert "ACME02302: late.test: waiting for the next attempt at" in log, log[-2000:]
    assert "ACME01062: late.test" not in log, log[-2000:]
    assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "late.test"))


def selfsigned_set(names, not_before=None, days=30):
    """A key and a certificate for names (not from a CA: a chain of one), as PEM, and its
    serial number."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    now = datetime.datetime.now(datetime.timezone.utc)
    nb = not_before or now - datetime.timedelta(minutes=5)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(nb).not_valid_after(nb + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), cert.serial_number


def stage(h, set_name, key_pem, chain_pem, meta):
    """Writes staging/<set_name> as the driver (the User) does."""
    staging = os.path.join(h.store, "staging")
    os.makedirs(staging, exist_ok=True)
    d = os.path.join(staging, set_name)
    os.makedirs(d)
    for fname, data in (("privkey.pem", key_pem), ("fullchain.pem", chain_pem),
                        ("meta.json", json.dumps(meta).encode())):
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)
        give_to_user(os.path.join(d, fname))
    give_to_user(d)
    give_to_user(staging)


def test_set_staged_by_an_earlier_generation_is_not_ordered_again(httpd_factory):
    """The previous generation's driver stages a set after this generation's driver started
    but before it got the lock: no second order; the staged set is activated."""
    h = httpd_factory()
    lock = HeldLock(h.store)
    try:
        h.write_conf(ACCOUNT + "ACMEDomain staged.test\n" + h.ssl_vhost("staged.test"))
        h.start()
        assert h.wait_log("ACME01057", timeout=20), h.log_text()[-2000:]
        key, chain, serial = selfsigned_set(["staged.test"])
        stage(h, "staged.test", key, chain, {"names": ["staged.test"]})
    finally:
        lock.release()
    assert h.wait_log("ACME02304", timeout=20), h.log_text()[-2000:]
    assert h.wait_log("ACME01020: staged.test: new certificate activated", timeout=30), \
        h.log_text()[-3000:]
    assert "ACME01062: staged.test" not in h.log_text(), h.log_text()[-3000:]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if acmetest.tls_peer_cert(h.https_port, "staged.test").serial_number == serial:
            break
        time.sleep(0.1)
    assert acmetest.tls_peer_cert(h.https_port, "staged.test").serial_number == serial


def job_of(h, name):
    with open(os.path.join(h.store, "jobs", f"{name}.json")) as f:
        return json.load(f)


def test_refused_set_is_a_failed_attempt_not_a_loop(httpd_factory):
    """A set the worker staged that the parent refuses (here its key is not the certificate's)
    counts as a failed attempt: one line says why, the job keeps the backoff, nothing is
    ordered before it ends; then a good certificate follows. (A set someone else planted is no
    attempt of ours: test_hostile_store.py, test_change.py.)"""
    import datetime
    h = httpd_factory()
    key, _, _ = selfsigned_set(["refused.test"])
    _, chain, _ = selfsigned_set(["refused.test"])
    stage(h, "refused.test", key, chain, {"names": ["refused.test"]})
    # As the worker leaves it: its set staged, waiting for activation.
    job = os.path.join(h.store, "jobs", "refused.test.json")
    os.makedirs(os.path.dirname(job), exist_ok=True)
    with open(job, "w") as f:
        json.dump({"failures": 0, "staged": int(time.time()) - 10, "challenges": []}, f)
    give_to_user(job)
    h.write_conf(ACCOUNT + "ACMEDomain refused.test\n" + h.ssl_vhost("refused.test"))
    h.allowed_errors += ["ACME01021", "ACME02306"]
    started = time.time()
    h.start()
    assert h.wait_log("ACME02304", timeout=20), h.log_text()[-3000:]
    log = h.log_text()
    assert "ACME01021: refused.test" in log and "does not match the private key" in log
    lines = [l for l in log.splitlines() if "ACME02306" in l]
    assert len(lines) == 1, log[-3000:]
    assert "refused.test: the certificate obtained last was refused at activation: " \
           "staging/refused.test/fullchain.pem: the leaf certificate does not match the private " \
           "key (kept in " in lines[0]
    assert "(attempt 1)" in lines[0]
    assert "ACME01062: refused.test" not in log, log[-3000:]
    j = job_of(h, "refused.test")
    assert j["failures"] == 1 and 45 <= j["next-run"] - started <= 80, j
    assert len([n for n in os.listdir(os.path.join(h.store, "staging"))
                if n.startswith(".rejected.refused.test.")]) == 1
    # After the backoff, one order and a good certificate; the refusal is counted once.
    cert = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        c = acmetest.tls_peer_cert(h.https_port, "refused.test")
        if "Pebble" in c.issuer.rfc4514_string():
            cert = c
            break
        time.sleep(0.2)
    log = h.log_text()
    assert cert is not None, log[-3000:]
    assert log.count("ACME01062: refused.test") == 1, log[-3000:]
    assert log.count("ACME02306") == 1
    assert cert.not_valid_before < datetime.datetime.utcnow()
    h.settle()
    h.graceful()
    assert h.wait_log("ACME02304", count=3, timeout=30), h.log_text()[-3000:]
    assert job_of(h, "refused.test")["failures"] == 0


def test_extra_names_and_clock_skew(httpd_factory):
    """A certificate with a name more than asked for is used and not ordered again; one whose
    notBefore is two minutes ahead of the server's clock is activated at once; one two hours
    ahead waits in staging (no new order, no restart) and the log says the clock is behind."""
    import datetime
    h = httpd_factory()
    now = datetime.datetime.now(datetime.timezone.utc)
    k1, c1, s1 = selfsigned_set(["extra.test", "www.extra.test"])
    stage(h, "extra.test", k1, c1, {"names": ["extra.test"]})
    k2, c2, s2 = selfsigned_set(["skew.test"], not_before=now + datetime.timedelta(minutes=2))
    stage(h, "skew.test", k2, c2, {"names": ["skew.test"]})
    k3, c3, _ = selfsigned_set(["early.test"], not_before=now + datetime.timedelta(hours=2))
    stage(h, "early.test", k3, c3, {"names": ["early.test"]})
    h.write_conf(ACCOUNT + "ACMEDomain extra.test\nACMEDomain skew.test\n"
                 "ACMEDomain early.test\n" + h.ssl_vhost("extra.test") +
                 h.ssl_vhost("skew.test") + h.ssl_vhost("early.test"))
    h.start()
    assert h.wait_log("ACME02304", timeout=20), h.log_text()[-3000:]
    log = h.log_text()
    assert "ACME01020: extra.test: new certificate activated" in log, log[-3000:]
    assert "ACME01020: skew.test: new certificate activated" in log, log[-3000:]
    assert "ACME02307: early.test: the new certificate is not activated yet" in log
    assert "clock is probably behind" in log
    assert "ACME02303: early.test: a new certificate is staged" in log
    for name in ("extra.test", "skew.test", "early.test"):
        assert f"ACME01062: {name}" not in log, log[-3000:]
    assert "also names" not in log and "ACME01059" not in log, log[-3000:]
    assert acmetest.tls_peer_cert(h.https_port, "extra.test").serial_number == s1
    assert acmetest.tls_peer_cert(h.https_port, "skew.test").serial_number == s2
    assert os.path.isdir(os.path.join(h.store, "staging", "early.test"))


def test_renewal_information_is_asked_of_the_issuing_ca(httpd_factory, pebble):
    """Two CAs (two proxies in front of pebble, both with renewal information); the first
    fails new orders, so the second issues. Its renewal information is asked of the second,
    the issuer; the first is not asked. A window ending after notAfter is cut."""
    import datetime
    from chaosproxy import ChaosProxy
    first, second = ChaosProxy(pebble), ChaosProxy(pebble)
    try:
        now = datetime.datetime.now(datetime.timezone.utc)
        window = {"start": (now + datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "end": (now + datetime.timedelta(days=20000)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        first.ari = second.ari = window
        first.mode, first.only_path = "500", "/order-plz"
        h = httpd_factory()
        h.write_conf(f"ACMECertificateAuthority {first.directory} {second.directory}\n"
                     f"ACMECACertificateFile {pebble.ca_file}\n" + ACCOUNT +
                     "ACMEDomain ari.test\n" + h.ssl_vhost("ari.test"), ca=False)
        h.allowed_errors.append("ACME01053")
        h.start()
        assert h.wait_log(f"ACME01054: ari.test: new certificate obtained from "
                          f"{second.directory}", timeout=60), h.log_text()[-3000:]
        assert h.wait_log("ACME01066: ari.test", timeout=60), h.log_text()[-3000:]
        asked = lambda p: [r for r in p.requests if r[1].startswith("/renewal-info/")]
        assert asked(second) and not asked(first), (first.requests, second.requests)
        line = [l for l in h.log_text().splitlines() if "ACME01066" in l][0]
        assert "ends too close to the certificate's expiry: cut to its last tenth" in line
    finally:
        first.stop()
        second.stop()
