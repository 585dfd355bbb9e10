"""A CA that really fails: unreachable, 5xx, garbage, rate limits. The server keeps serving
what it has, logs each attempt with the domain, the cause and the next attempt, backs off as
the job file shows, and recovers by itself."""
import json
import os
import time

import pytest

import acmetest
from chaosproxy import ChaosProxy
from test_httpd import ACCOUNT, issuer_is_self, wait_real_cert


@pytest.fixture
def proxy(pebble):
    p = ChaosProxy(pebble)
    yield p
    p.stop()


def job(h, name):
    with open(os.path.join(h.store, "jobs", f"{name}.json")) as f:
        return json.load(f)


def start_with_ca(h, ca_url, name):
    h.write_conf(f"ACMECertificateAuthority {ca_url}\n" + ACCOUNT + f"ACMEDomain {name}\n" +
                 h.ssl_vhost(name), ca=False)
    with open(h.conf_path) as f:
        conf = f.read()
    with open(h.conf_path, "w") as f:
        f.write(conf + f"ACMECACertificateFile {h.pebble.ca_file}\n")
    h.start()


def test_unreachable_ca_backs_off_and_keeps_the_fallback(httpd_factory):
    h = httpd_factory()
    start_with_ca(h, f"https://127.0.0.1:{acmetest.free_port()}/dir", "down.test")
    assert h.wait_log("ACME01055: down.test", timeout=20), h.log_text()[-2000:]
    h.allowed_errors.append("ACME01055")
    line = [l for l in h.log_text().splitlines() if "ACME01055" in l][0]
    assert "Connection refused" in line or "Failed to connect" in line, line
    assert "next attempt" in line and "(attempt 1)" in line
    j = job(h, "down.test")
    assert j["failures"] == 1
    assert 45 <= j["next-run"] - time.time() <= 75
    assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "down.test"))
    # A restart does not forget the backoff: the new generation's driver takes over and starts
    # nothing; no second attempt was made by either (a failed one would count in the job file).
    h.graceful()
    assert h.wait_log("AH00493")
    h.wait_driver()
    assert h.log_text().count("ACME01062: down.test") == 1
    assert h.log_text().count("ACME01055") == 1, "no tight retry loop"
    assert job(h, "down.test") == j
    assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "down.test"))


@pytest.mark.parametrize("mode,retry_after,where", [
    ("500", None, "/order-plz"),
    ("garbage", None, "/dir"),
    ("503", 600, "/nonce-plz"),
    ("429", 3600, "/order-plz"),
])
def test_failing_ca_is_reported_and_retry_after_obeyed(httpd_factory, proxy, mode, retry_after,
                                                       where):
    proxy.mode, proxy.only_path, proxy.retry_after = mode, where, retry_after
    h = httpd_factory()
    name = f"f{mode}.test"
    start_with_ca(h, proxy.directory, name)
    assert h.wait_log(f"ACME01055: {name}", timeout=20), h.log_text()[-2000:]
    h.allowed_errors.append("ACME01055")
    line = [l for l in h.log_text().splitlines() if "ACME01055" in l][0]
    expected = {"500": "serverInternal (HTTP 500): injected by the test proxy",
                "garbage": "not a JSON object", "503": "HEAD", "429": "rateLimited (HTTP 429)"}
    assert expected[mode] in line, line
    wait = job(h, name)["next-run"] - time.time()
    if retry_after:
        assert retry_after - 5 <= wait <= retry_after + 5, wait
    else:
        assert 45 <= wait <= 75, wait
    assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, name))


@pytest.mark.slow(60)
def test_recovers_by_itself_when_the_ca_comes_back(httpd_factory, proxy):
    proxy.mode = "500"
    h = httpd_factory()
    start_with_ca(h, proxy.directory, "back.test")
    assert h.wait_log("ACME01055: back.test", timeout=20)
    h.allowed_errors.append("ACME01055")
    proxy.mode = "pass"
    cert = wait_real_cert(h, "back.test", timeout=90)
    assert acmetest.san_names(cert) == ["back.test"]
    # The new generation's driver forgets the failures once it sees the set activated: soon
    # after the certificate is served, not before.
    acmetest.wait_until(lambda: job(h, "back.test")["failures"] == 0, 20,
                        lambda: f"job file: {job(h, 'back.test')}")


def test_outside_text_cannot_forge_log_lines(httpd_factory, proxy):
    """A CA's words reach the error log escaped: a newline cannot start a forged line and a
    terminal escape is shown, not obeyed."""
    proxy.mode = "500"
    proxy.detail = "first\n[Sun Nov 29 10:00:00 2026] [acme:emerg] forged\x1b[2J\u009b31m"
    h = httpd_factory()
    start_with_ca(h, proxy.directory, "forge.test")
    assert h.wait_log("ACME01055: forge.test", timeout=20), h.log_text()[-2000:]
    h.allowed_errors += ["ACME01055", "forged"]
    text = h.log_text()
    assert "\x1b" not in text and "\u009b" not in text
    assert not [l for l in text.splitlines() if l.startswith("[Sun Nov 29 10:00:00 2026]")]
    line = [l for l in text.splitlines() if "ACME01055: forge.test" in l][0]
    assert "APR does not understand" not in line, "our own status codes are named, not numbered"
    assert "first\\n[Sun Nov 29 10:00:00 2026] [acme:emerg] forged\\x1b[2J\\xc2\\x9b31m" in line, line
