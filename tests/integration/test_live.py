"""ACMEActivation live against the real pebble issuing short-lived certificates: each new
certificate is served from the next TLS handshake, without a restart (docs/live.md)."""
import os
import signal
import ssl
import socket
import subprocess
import threading
import time

import pytest
from cryptography import x509

import acmetest
from test_httpd import ACCOUNT

VALIDITY = 30  # seconds: with ACMERenewWindow 60% a renewal starts 12 s after each issuance


@pytest.fixture(scope="module")
def short_pebble(workdir):
    # No reused authorizations: every renewal is validated (tls-alpn-01 on a live vhost).
    pb = acmetest.Pebble(os.path.join(workdir, "pebble-live"), validity=VALIDITY,
                         env_extra={"PEBBLE_AUTHZREUSE": "0"})
    yield pb
    pb.stop()


def log_time(line):
    return acmetest._log_time(line)


def lines_with(h, needle):
    return [li for li in h.log_text().splitlines() if needle in li]


def activations(h, name):
    """(time, serial as int) of every ACME03801 line of name."""
    out = []
    for li in lines_with(h, f"ACME03801: {name}: new certificate (serial "):
        serial = li.split("(serial ", 1)[1].split(")", 1)[0]
        out.append((log_time(li), int(serial, 16)))
    return out


class ClientLoop:
    """Handshakes one after the other (SNI name), recording (time, serial) or the failure."""

    def __init__(self, h, name, ctx_factory=None, keep_self_signed=False):
        self.h, self.name, self.keep_self_signed = h, name, keep_self_signed
        self.ctx_factory = ctx_factory
        self.seen, self.failures, self.fallbacks = [], [], 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def handshake(self):
        if not self.ctx_factory:
            return acmetest.tls_peer_cert(self.h.https_port, self.name, timeout=5)
        ctx = self.ctx_factory()
        with socket.create_connection((acmetest.LOOPBACK, self.h.https_port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname=self.name) as tls:
                return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))

    def run(self):
        while not self.stop.is_set():
            try:
                cert = self.handshake()
                if cert.issuer == cert.subject and not self.keep_self_signed:
                    self.fallbacks += 1  # the temporary certificate, before the first one
                else:
                    self.seen.append((time.time(), cert.serial_number))
            except Exception as e:  # noqa: BLE001 - every failure counts
                self.failures.append((time.time(), repr(e)))
            time.sleep(0.01)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def first_seen(self, serial):
        return next((t for t, s in list(self.seen) if s == serial), None)

    def serials(self):
        """The serials in the order they were first served."""
        out = []
        for _, s in list(self.seen):
            if s not in out:
                out.append(s)
        return out


def staged_times(h, name):
    """The times the worker staged a new certificate for name (ACME01054)."""
    return [log_time(li) for li in lines_with(h, f"ACME01054: {name}: new certificate obtained")]


@pytest.mark.slow(120)
@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_live_renewals_without_restart(httpd_factory, short_pebble, mpm):
    """The first certificate replaces the fallback and three renewals follow, all live: a
    client loop sees each new serial within 1 s of its staging and never a failed handshake;
    no graceful restart happens; the status document and the "activated" event follow."""
    from test_notify import Notify
    from test_status import LOCATIONS
    name = f"live-{mpm}.test"
    h = httpd_factory(ca=short_pebble, mpm=mpm)
    n = Notify(h)
    # tls-alpn-01 only: the validations of the renewals reach the live vhost's handshakes.
    h.write_conf(ACCOUNT + LOCATIONS + n.directive() + "ACMEChallenges tls-alpn-01\n"
                 f"ACMERenewWindow 60%\n<ACMEDomain {name}>\n    ACMEActivation live\n"
                 "</ACMEDomain>\n" +
                 h.ssl_vhost(name, extra="    Protocols http/1.1 acme-tls/1\n"),
                 extra_modules=("status",))
    h.start()
    with ClientLoop(h, name) as loop:
        # Before the first certificate: the fallback, answered with 503 by mod_acme.
        code, headers, _ = acmetest.https_get(h.https_port, name)
        first_code = code
        assert h.wait_log(f"ACME03801: {name}:", count=4, timeout=VALIDITY * 4 + 60), \
            h.log_text()[-4000:]
        acts = activations(h, name)
        acmetest.wait_until(lambda: all(loop.first_seen(s) for _, s in acts), 5,
                            lambda: f"every activated serial served: {acts} {loop.serials()}")
        code, _, body = acmetest.https_get(h.https_port, name)
    assert first_code == 503 and headers.get("Retry-After"), (first_code, headers)
    assert code == 200 and b"hello" in body
    log = h.log_text()
    # The MPMs' graceful restart lines: event's AH00493, prefork's AH00171.
    assert "AH00493" not in log and "AH00171" not in log, "a graceful restart happened"
    assert "ACME01070" not in log
    assert not loop.failures, loop.failures[:5]
    # The CA validated each renewal over tls-alpn-01 against the live vhost: every renewal
    # order between the first activation and the last that the CA made pending (ACME00026;
    # pebble 2.4 reuses a valid authorization once in a hundred orders even with
    # PEBBLE_AUTHZREUSE=0, and such an order is ready at once, with nothing to validate).
    answered = [log_time(li) for li in lines_with(h, f"ACME02610: {name}: answered a tls-alpn-01")]
    pending = [log_time(li) for li in lines_with(h, f"ACME00026: {name}: order ")
               if li.rstrip().endswith(" is pending")]
    between = (lambda ts: [t for t in ts if acts[0][0] < t <= acts[-1][0]])
    assert len(between(answered)) >= len(between(pending)) >= 2, (answered, pending, acts)
    staged = staged_times(h, name)
    assert len(staged) >= 4
    # Each certificate is served within 1 s of being staged (the worker's ACME01054 line).
    delays = []
    for (t_act, serial), t_staged in zip(acts, staged):
        t_seen = loop.first_seen(serial)
        delays.append(round(t_seen - t_staged, 3))
        assert t_seen - t_staged < 1.0, (serial, t_staged, t_act, t_seen)
    print(f"\nlive: staged -> first handshake serving it, s: {delays}")
    print(f"{len(loop.seen)} handshakes, {len(loop.failures)} failed; serials served in order: " +
          " ".join(f"{s:X}" for s in loop.serials()))
    for li in lines_with(h, "ACME03801"):
        print(li)
    # Never an older one back once a newer one was served.
    serials = [s for _, s in loop.seen]
    order = loop.serials()
    assert order == [s for _, s in acts]
    assert loop.fallbacks > 0
    last = 0
    for s in serials:
        assert order.index(s) >= last, "an older certificate came back"
        last = order.index(s)
    # The status document says what is served, and "activated" was told for each serial.
    from test_status import status, cert_of
    # The driver (the status slot's only writer) follows the parent's activation at its next
    # tick: soon after the handshakes, not at the same moment.
    acmetest.wait_until(
        lambda: int(cert_of(status(h), name)["certificate"]["serial"], 16) == acts[-1][1], 10,
        lambda: f"status serial {cert_of(status(h), name)['certificate']['serial']}, "
                f"activated last {acts[-1][1]:X}")
    for k, (_, serial) in enumerate(acts):
        e = n.wait("activated", name, count=k + 1)
        assert int(e["env"]["ACME_SERIAL"], 16) == serial
    # A restart serves the same set from the store.
    h.graceful()
    assert h.wait_log("AH00493" if mpm == "event" else "AH00171")
    # The new generation runs (event's AH00489, prefork's AH00163).
    assert h.wait_log("AH00489" if mpm == "event" else "AH00163", count=2)
    h.settle()
    # The set served before the restart (or one activated live since, the renewals go on).
    served = acmetest.tls_peer_cert(h.https_port, name).serial_number
    assert served == acts[-1][1] or served in [s for _, s in activations(h, name)[len(acts):]]


def _ctx(ciphers):
    def make():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ciphers)
        return ctx
    return make


def make_own_cert(folder, name):
    cert, key = os.path.join(folder, "own.pem"), os.path.join(folder, "own.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", f"/CN={name}", "-addext",
                    f"subjectAltName=DNS:{name}"], check=True, capture_output=True)
    return cert, key


@pytest.mark.slow(120)
def test_live_two_key_types_and_own_certificate(httpd_factory, short_pebble):
    """ECDSA and RSA of one certificate are both renewed live and both served (a client for
    each); a vhost with its own
    SSLCertificateFile keeps it through every live activation; children killed with -9 and
    started again after an activation serve the new set."""
    name, own = "both.test", "www.both.test"
    h = httpd_factory(ca=short_pebble)
    cert, key = make_own_cert(h.root, own)
    alpn = ""
    h.write_conf(ACCOUNT + "ACMERenewWindow 60%\n"
                 f"<ACMEDomain {name} {own}>\n    ACMEActivation live\n"
                 "    ACMEKeyType ec256 rsa2048\n</ACMEDomain>\n" +
                 h.ssl_vhost(name, extra=alpn) +
                 h.ssl_vhost(own, extra=alpn + f"    SSLCertificateFile {cert}\n"
                                              f"    SSLCertificateKeyFile {key}\n"))
    own_serial = x509.load_pem_x509_certificate(open(cert, "rb").read()).serial_number
    h.start()
    ec = ClientLoop(h, name, _ctx("ECDHE-ECDSA-AES128-GCM-SHA256"))
    rsa = ClientLoop(h, name, _ctx("ECDHE-RSA-AES128-GCM-SHA256"))
    mine = ClientLoop(h, own, keep_self_signed=True)
    with ec, rsa, mine:
        # The first of each type and one renewal of each: four activations.
        assert h.wait_log(f"ACME03801: {name}:", count=2, timeout=60), h.log_text()[-4000:]
        # Children killed with -9 while sets are activated live (the driver once, another
        # child every 1.5 s): those started again serve the newest set, the new driver goes on.
        driver = h.driver_pid()
        os.kill(driver, signal.SIGKILL)
        stop_killing = threading.Event()

        def killer():
            while not stop_killing.wait(1.5):
                d = h.driver_pid()
                if not d:
                    continue  # the next driver is on its way: not before it holds its lock
                for c in h.children():
                    if c != d:
                        try:
                            os.kill(c, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                        break
        kt = threading.Thread(target=killer)
        kt.start()
        try:
            acts_before = len(activations(h, name))
            assert h.wait_log(f"ACME03801: {name}:", count=acts_before + 1,
                              timeout=VALIDITY * 2 + 60), h.log_text()[-4000:]
        finally:
            stop_killing.set()
            kt.join()
        assert h.wait_log(f"ACME03801: {name} (rsa2048):", count=2, timeout=VALIDITY * 2 + 60) \
            and h.wait_log(f"ACME03801: {name}:", count=4, timeout=VALIDITY * 2 + 60), \
            h.log_text()[-4000:]
        acts_ec = activations(h, name)
        acts_rsa = activations(h, f"{name} (rsa2048)")
        acmetest.wait_until(lambda: ec.first_seen(acts_ec[-1][1]) and
                            rsa.first_seen(acts_rsa[-1][1]), 5,
                            lambda: f"both served: {acts_ec} {acts_rsa} {ec.serials()} "
                                    f"{rsa.serials()}")
    assert "AH00493" not in h.log_text()
    # The killed children's connections may fail; no handshake that completed was wrong.
    assert set(ec.serials()) <= {s for _, s in acts_ec}, (ec.serials(), acts_ec)
    assert set(rsa.serials()) <= {s for _, s in acts_rsa}
    assert len(set(ec.serials())) >= 2 and len(set(rsa.serials())) >= 2
    # The ECDSA client got ECDSA certificates only, the RSA client RSA ones.
    assert mine.serials() == [own_serial]
    # Its only failures: connections to a child killed meanwhile.
    assert all("EOF" in r or "reset" in r.lower() for _, r in mine.failures), mine.failures
    # Before its first certificate an RSA-only client finds no certificate it can use (the
    # fallback is ECDSA); after it, only connections to the children killed may fail.
    late = [f for f in ec.failures if f[0] > acts_ec[0][0] + 0.2] + \
        [f for f in rsa.failures if f[0] > acts_rsa[0][0] + 0.2]
    assert all("EOF" in r or "reset" in r.lower() for _, r in late), late
    # The newest sets are served by every child now.
    for _ in range(20):
        before = activations(h, name)[-1][1]
        served = acmetest.tls_peer_cert(h.https_port, name).serial_number
        assert served in (before, activations(h, name)[-1][1])
    assert f"ACME01031: {name}: virtual host {own} has an SSLCertificateFile" in h.log_text()


def test_activation_directive_is_checked(httpd_factory):
    """ACMEActivation takes graceful or live, once per scope, and live needs the restart
    thread."""
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEActivation sometimes\nACMEDomain a.test\n" + h.ssl_vhost("a.test"))
    r = h.configtest()
    assert r.returncode != 0
    assert "ACMEActivation sometimes: expected graceful" in r.stdout + r.stderr
    h.write_conf(ACCOUNT + "ACMEActivation live\nACMEActivation graceful\nACMEDomain a.test\n" +
                 h.ssl_vhost("a.test"))
    r = h.configtest()
    assert r.returncode != 0 and "ACMEActivation" in r.stdout + r.stderr
    h.write_conf(ACCOUNT + "ACMEAutoRestart off\nACMEActivation live\nACMEDomain a.test\n" +
                 h.ssl_vhost("a.test"))
    r = h.configtest()
    assert r.returncode != 0
    assert "ACME03800: ACMEActivation live (a.test" in r.stdout + r.stderr
    h.write_conf(ACCOUNT + "ACMEActivation graceful\n<ACMEDomain a.test>\n"
                 "    ACMEActivation live\n</ACMEDomain>\n" + h.ssl_vhost("a.test"))
    r = h.configtest()
    assert r.returncode == 0, r.stdout + r.stderr


def _kill_during_live_activation(httpd_factory, seed, kill):
    """A server of test_crash.NAMES with ACMEActivation live, started; at a random moment within
    the promotion and publication of the first set, kill(h); then every process killed, the
    store checked whole, and the next start serves the active set of every name."""
    import random
    import test_crash
    rnd = random.Random(seed)
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEActivation live\n" +
                 "".join(f"ACMEDomain {n}\n" for n in test_crash.NAMES) +
                 "".join(h.ssl_vhost(n) for n in test_crash.NAMES))
    h.allowed_errors += ["AH00046"]
    h.start()
    assert h.wait_log("ACME01059", timeout=40), h.log_text()[-3000:]
    time.sleep(rnd.uniform(0.0, 0.2))  # the promotion and publication take tens of ms
    kill(h)
    h.kill_all()
    test_crash.store_is_consistent(h)
    h.start()
    for n in test_crash.NAMES:
        acmetest.wait_until(lambda: acmetest.tls_peer_cert(h.https_port, n).issuer !=
                            acmetest.tls_peer_cert(h.https_port, n).subject, 40,
                            lambda: h.log_text()[-3000:])
    test_crash.store_is_consistent(h)
    for n in test_crash.NAMES:
        test_crash.served_is_active(h, n)


@pytest.mark.parametrize("seed", range(4))
def test_kill_9_everything_during_live_activation(httpd_factory, seed):
    """The whole server killed with -9 while the parent promotes and publishes a set live (the
    test_crash.py kill, with ACMEActivation live): the store stays whole, and the next start
    serves the active set (the old one or the new one, whole)."""
    _kill_during_live_activation(httpd_factory, seed, lambda h: None)


@pytest.mark.parametrize("seed", range(3))
def test_kill_9_parent_during_live_activation(httpd_factory, seed):
    """kill -9 of the parent alone while sets are promoted and published live (children killed
    mid-activation: test_live_two_key_types_and_own_certificate). The children it leaves keep
    serving whole sets, each the fallback or a set of the store (a handshake proves key and
    certificate match); the store stays whole, and the next start serves the active sets."""
    import test_crash

    def kill_parent(h):
        parent = h.pid()
        os.kill(parent, signal.SIGKILL)
        acmetest.wait_until(lambda: parent not in h.processes(), 10, "the killed parent to go")
        assert h.processes(), "children outlive a parent killed with -9"
        for n in test_crash.NAMES:
            assert test_crash.served_matches_store(h, n), n

    _kill_during_live_activation(httpd_factory, seed, kill_parent)


@pytest.mark.slow(110)
def test_live_set_refused_by_the_parent(httpd_factory, short_pebble):
    """A renewal staged by the worker that the parent refuses at its live promotion (here its
    key was replaced while the parent was held with SIGSTOP) is a failed attempt: the old
    certificate keeps being served, one line says why, the job backs off, no restart happens;
    after the backoff a good certificate is served live."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from test_driver_defects import job_of
    name = "refused-live.test"
    h = httpd_factory(ca=short_pebble)
    h.write_conf(ACCOUNT + f"ACMERenewWindow 60%\nACMEActivation live\nACMEDomain {name}\n" +
                 h.ssl_vhost(name))
    h.allowed_errors += ["ACME01021", "ACME02306"]
    h.start()
    assert h.wait_log(f"ACME03801: {name}:", timeout=40), h.log_text()[-3000:]
    first = activations(h, name)[0][1]
    parent = h.pid()
    os.kill(parent, signal.SIGSTOP)
    try:
        assert h.wait_log(f"ACME01054: {name}: new certificate obtained", count=2,
                          timeout=VALIDITY + 20), h.log_text()[-3000:]
        other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        with open(os.path.join(h.store, "staging", name, "privkey.pem"), "wb") as f:
            f.write(other)  # in place: the User's file, as the User could
    finally:
        os.kill(parent, signal.SIGCONT)
    assert h.wait_log("ACME02306", timeout=20), h.log_text()[-3000:]
    assert acmetest.tls_peer_cert(h.https_port, name).serial_number == first
    log = h.log_text()
    assert f"ACME01021: {name}" in log and "does not match the private key" in log, log[-3000:]
    lines = lines_with(h, "ACME02306")
    assert len(lines) == 1 and f"{name}: the certificate obtained last was refused" in lines[0] \
        and "(attempt 1)" in lines[0], lines
    job = job_of(h, name)
    assert job["failures"] == 1 and job["next-run"] - time.time() > 30, job
    # After the backoff: one new order, served live, and never a restart.
    assert h.wait_log(f"ACME03801: {name}:", count=2, timeout=100), h.log_text()[-3000:]
    second = activations(h, name)[1][1]
    assert second != first
    assert staged_times(h, name)[2] >= job["next-run"] - 1, "ordered again during the backoff"
    acmetest.wait_until(lambda: acmetest.tls_peer_cert(h.https_port, name).serial_number ==
                        second, 5, "the second certificate served")
    log = h.log_text()
    assert "AH00493" not in log and "ACME01070" not in log, "a graceful restart happened"
    assert log.count("ACME02306") == 1
