"""CA failover: with several ACMECertificateAuthority URLs, a first CA that is unreachable or
answers with an error that retrying can fix is skipped (the log says why) and the next one
issues, in the same attempt; the next renewal asks the first one again, which issues once it
works again. What a client sees tells the CAs apart: each pebble has its own intermediate."""
import json
import os

import pytest

import acmetest
from chaosproxy import ChaosProxy
from test_httpd import ACCOUNT, issuer_is_self

VALIDITY = 100  # seconds: renewal is due after 40 (ACMERenewWindow 60%)


def meta(h, name):
    with open(os.path.join(h.store, "domains", name, "meta.json")) as f:
        return json.load(f)


def job(h, name):
    with open(os.path.join(h.store, "jobs", f"{name}.json")) as f:
        return json.load(f)


def intermediate_name(pb):
    """The subject of the pebble's intermediate, which issues every certificate of that CA."""
    from cryptography import x509
    return x509.load_pem_x509_certificate(pb._mgmt_get("/intermediates/0")).subject


def served_from(h, name, pb, timeout=30.0):
    """Waits until the vhost serves a certificate issued by pb; returns it."""
    want = intermediate_name(pb)

    def issued():
        try:
            c = acmetest.tls_peer_cert(h.https_port, name)
        except OSError:
            return None
        return c if c.issuer == want else None
    return acmetest.wait_until(issued, timeout,
                               lambda: f"{name} served from {pb.directory}\n"
                                       f"{h.log_text()[-4000:]}")


def test_unreachable_first_ca_the_second_issues(httpd_factory, pebble):
    down = f"https://127.0.0.1:{acmetest.free_port()}/dir"  # nothing listens there
    h = httpd_factory()
    h.write_conf(f"ACMECertificateAuthority {down} {pebble.directory}\n"
                 f"ACMECACertificateFile {pebble.ca_file}\n" + ACCOUNT +
                 "ACMEDomain fo.test\n" + h.ssl_vhost("fo.test"), ca=False)
    h.start()
    cert = served_from(h, "fo.test", pebble)
    assert acmetest.san_names(cert) == ["fo.test"]
    log = h.log_text()
    skipped = [line for line in log.splitlines() if "ACME01053: fo.test" in line]
    assert len(skipped) == 1, log[-3000:]
    assert down in skipped[0] and "trying the next ACMECertificateAuthority" in skipped[0]
    assert "Connection refused" in skipped[0] or "Failed to connect" in skipped[0], skipped[0]
    assert f"ACME01054: fo.test: new certificate obtained from {pebble.directory}" in log
    assert "ACME01055" not in log, "no failed attempt: the second CA issued in the same one"
    assert meta(h, "fo.test")["ca"] == pebble.directory
    assert job(h, "fo.test")["failures"] == 0


@pytest.fixture(scope="module")
def two_short_cas(workdir):
    """Two pebbles issuing 100-second certificates, validating on the same http and tls ports
    (those of the server under test), each with its own root and intermediate."""
    a = acmetest.Pebble(os.path.join(workdir, "pebble-fo-a"), validity=VALIDITY)
    b = acmetest.Pebble(os.path.join(workdir, "pebble-fo-b"), validity=VALIDITY,
                        http_port=a.http_port, tls_port=a.tls_port)
    # One file of trust roots for TLS to both (each pebble's listener has its own CA).
    ca_file = os.path.join(workdir, "pebble-fo-listeners.pem")
    with open(ca_file, "w") as out:
        for pb in (a, b):
            with open(pb.ca_file) as f:
                out.write(f.read())
    yield a, b, ca_file
    a.stop()
    b.stop()


@pytest.mark.slow(110)
def test_failing_first_ca_skipped_then_tried_again_at_renewal(workdir, two_short_cas):
    """The first CA (a proxy in front of pebble A) answers 500 to everything: B issues. Before
    the renewal A works again: the renewal asks A first, and A issues."""
    a, b, ca_file = two_short_cas
    first = ChaosProxy(a)
    first.mode = "500"
    root = os.path.join(acmetest.public_dir(workdir, "httpd"), "failover-renewal")
    h = acmetest.Httpd(root, a)
    try:
        h.write_conf(f"ACMECertificateAuthority {first.directory} {b.directory}\n"
                     f"ACMECACertificateFile {ca_file}\n" + ACCOUNT +
                     "ACMERenewWindow 60%\nACMEDomain fr.test\n" + h.ssl_vhost("fr.test"),
                     ca=False)
        h.start()
        cert = served_from(h, "fr.test", b)
        log = h.log_text()
        skipped = [line for line in log.splitlines() if "ACME01053: fr.test" in line]
        assert len(skipped) == 1, log[-3000:]
        assert first.directory in skipped[0], skipped[0]
        assert "serverInternal (HTTP 500): injected by the test proxy" in skipped[0], skipped[0]
        assert f"ACME01054: fr.test: new certificate obtained from {b.directory}" in log
        assert meta(h, "fr.test")["ca"] == b.directory
        assert job(h, "fr.test")["failures"] == 0

        # A works again. The renewal (due after 40 s) asks it first, and it issues.
        first.mode = "pass"
        renewed = served_from(h, "fr.test", a, timeout=VALIDITY + 30)
        assert renewed.serial_number != cert.serial_number
        assert not issuer_is_self(renewed)
        log = h.log_text()
        assert "the certificate is due for renewal: renewing" in log
        assert f"ACME01054: fr.test: new certificate obtained from {first.directory}" in log
        assert log.count("ACME01053: fr.test") == 1, "A was not skipped at the renewal"
        assert meta(h, "fr.test")["ca"] == first.directory
        assert ("POST", "/order-plz") in first.requests
        assert not h.unexpected_errors()
    finally:
        h.stop()
        first.stop()


def issued(pb, since):
    """Certificates pb issued after its log line number since."""
    with open(pb.log, errors="replace") as f:
        return [line for line in f.readlines()[since:] if "Issued certificate serial" in line]


def log_lines(pb):
    with open(pb.log, errors="replace") as f:
        return len(f.readlines())


def test_no_second_certificate_after_finalize(httpd_factory, pebble):
    """The first CA took the order's finalize, then asked to wait longer than an attempt may
    (Retry-After 400 s on the finalize answer): the attempt ends, and the order is resumed at
    that CA, not ordered again at the next one, which would make a second certificate for the
    same names. Resumed (the wait cut short in the job file), it gives the one certificate."""
    first = ChaosProxy(pebble)
    first.pass_headers = {"/finalize-order/": {"Retry-After": "400"}}
    try:
        since = log_lines(pebble)
        h = httpd_factory()
        h.write_conf(f"ACMECertificateAuthority {first.directory} {pebble.directory}\n"
                     f"ACMECACertificateFile {pebble.ca_file}\n" + ACCOUNT +
                     "ACMEDomain fin.test\n" + h.ssl_vhost("fin.test"), ca=False)
        h.start()
        assert h.wait_log("ACME01055: fin.test", timeout=30), h.log_text()[-3000:]
        h.allowed_errors.append("ACME01055")
        log = h.log_text()
        line = [x for x in log.splitlines() if "ACME02902: fin.test" in x]
        assert len(line) == 1, log[-3000:]
        assert first.directory in line[0] and "resumed" in line[0], line[0]
        assert "ACME01053: fin.test" not in log and "ACME01054" not in log, log[-3000:]
        j = job(h, "fin.test")
        assert j["ca"] == first.directory and "/my-order/" in j["order"], j
        # pebble finishes the order it was asked to finalize: one certificate, not two.
        acmetest.wait_until(lambda: issued(pebble, since), 10, "pebble issuing the order")
        assert len(issued(pebble, since)) == 1

        # The next attempt (brought forward) resumes the order at the first CA.
        h.stop()
        j["next-run"] = 0
        with open(os.path.join(h.store, "jobs", "fin.test.json"), "w") as f:
            json.dump(j, f)
        first.pass_headers = {}
        h.start()
        cert = served_from(h, "fin.test", pebble)
        assert acmetest.san_names(cert) == ["fin.test"]
        assert f"ACME01054: fin.test: new certificate obtained from {first.directory}" \
            in h.log_text()
        assert "ACME00030: fin.test: resuming order" in h.log_text()
        assert len(issued(pebble, since)) == 1, "one certificate for the names"
    finally:
        first.stop()
