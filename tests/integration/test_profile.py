"""ACMEProfile (draft-ietf-acme-profiles) through the ChaosProxy in front of pebble, which lists
profiles in the directory and records each order (pebble 2.4 has no profiles): the order asks
for a profile the CA lists, the set's meta.json keeps it, the issuance's log line names it and a
changed ACMEProfile gets a new certificate; a profile the CA lacks is logged once and ordered
without, or, when mandatory, fails with a clear error and a long backoff. Let's Encrypt issues
IP address certificates only under shortlived: a warning at start says so."""
import json
import os
import time

import pytest

import acmetest
from chaosproxy import ChaosProxy
from test_httpd import ACCOUNT, issuer_is_self, wait_real_cert

PROFILES = {"classic": "90 days", "shortlived": "6 days"}


@pytest.fixture
def proxy(pebble):
    p = ChaosProxy(pebble)
    p.profiles = dict(PROFILES)
    yield p
    p.stop()


def conf(proxy, h, body):
    h.write_conf(f"ACMECertificateAuthority {proxy.directory}\n"
                 f"ACMECACertificateFile {h.pebble.ca_file}\n" + ACCOUNT + body, ca=False)


def meta(h, name):
    with open(os.path.join(h.store, "domains", name, "meta.json")) as f:
        return json.load(f)


def job(h, name):
    with open(os.path.join(h.store, "jobs", f"{name}.json")) as f:
        return json.load(f)


def wait_new_cert(h, name, old_serial, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = acmetest.tls_peer_cert(h.https_port, name)
            if c.serial_number != old_serial and not issuer_is_self(c):
                return c
        except OSError:
            pass  # a restart under way
        time.sleep(0.1)
    raise AssertionError(f"{name}: still the old certificate\n{h.log_text()[-3000:]}")


def test_profile_asked_for_kept_and_changed(httpd_factory, proxy):
    h = httpd_factory()
    vhost = h.ssl_vhost("prof.test")
    conf(proxy, h, "ACMEProfile shortlived\nACMEDomain prof.test\n" + vhost)
    h.start()
    first = wait_real_cert(h, "prof.test")
    assert [o.get("profile") for o in proxy.new_orders()] == ["shortlived"]
    m = meta(h, "prof.test")
    assert m["profile"] == "shortlived" and m["profile-configured"] == "shortlived"
    assert "ACME01054: prof.test: new certificate obtained from " + proxy.directory + \
        " under the profile shortlived;" in h.log_text()

    # Unchanged: restarts order nothing.
    h.graceful()
    assert h.wait_log("AH00493")
    h.wait_driver()
    assert len(proxy.new_orders()) == 1
    h.stop()

    # Changed: a new certificate under the new profile, the old one served meanwhile.
    conf(proxy, h, "ACMEProfile classic\nACMEDomain prof.test\n" + vhost)
    h.start()
    second = wait_new_cert(h, "prof.test", first.serial_number)
    assert "the current certificate was ordered for the profile shortlived, and ACMEProfile " \
           "asks for classic" in h.log_text()
    assert [o.get("profile") for o in proxy.new_orders()] == ["shortlived", "classic"]
    assert meta(h, "prof.test")["profile"] == "classic"
    h.stop()

    # Removed: a new certificate without a profile.
    conf(proxy, h, "ACMEDomain prof.test\n" + vhost)
    h.start()
    wait_new_cert(h, "prof.test", second.serial_number)
    assert "ordered for the profile classic, and ACMEProfile is no longer set" in h.log_text()
    assert "profile" not in proxy.new_orders()[-1]
    assert "profile" not in meta(h, "prof.test")


def test_profile_not_offered_is_logged_once_and_ordered_without(httpd_factory, proxy):
    proxy.profiles = {"classic": "90 days"}
    h = httpd_factory()
    conf(proxy, h, "ACMEProfile tlsserver\nACMEDomain noprof.test\n" + h.ssl_vhost("noprof.test"))
    h.start()
    wait_real_cert(h, "noprof.test")
    notes = [x for x in h.log_text().splitlines() if "ACME02802" in x]
    assert len(notes) == 1, notes
    assert ":warn]" in notes[0]
    assert "noprof.test: the CA " + proxy.directory + " does not offer the profile tlsserver " \
           "(it offers: classic); ordering without it" in notes[0]
    assert [o.get("profile") for o in proxy.new_orders()] == [None]
    m = meta(h, "noprof.test")
    assert m["profile-configured"] == "tlsserver" and "profile" not in m
    # The set fits what was asked: restarts neither order again nor repeat the note.
    h.graceful()
    assert h.wait_log("AH00493")
    h.wait_driver()
    assert len(proxy.new_orders()) == 1
    assert "ACME01022" not in h.log_text()


def test_mandatory_profile_not_offered_fails_clearly(httpd_factory, proxy):
    proxy.profiles = {"classic": "90 days"}
    h = httpd_factory()
    conf(proxy, h, "ACMEProfile tlsserver mandatory\nACMEDomain must.test\n" +
         h.ssl_vhost("must.test"))
    h.start()
    assert h.wait_log("ACME01055: must.test", timeout=20), h.log_text()[-2000:]
    h.allowed_errors.append("ACME01055")
    line = [x for x in h.log_text().splitlines() if "ACME01055" in x][0]
    assert f"the CA {proxy.directory} does not offer the profile tlsserver (it offers: " \
           "classic), and ACMEProfile says it is mandatory" in line, line
    assert "the configuration must change" in line, line
    wait = job(h, "must.test")["next-run"] - time.time()
    assert 9 * 3600 <= wait <= 15 * 3600, wait
    # Nothing was ordered, not even an account made: the directory said enough.
    assert proxy.new_orders() == []
    assert not [p for p in proxy.payloads if p[0] == "/sign-me-up"]
    assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "must.test"))


@pytest.mark.parametrize("ca,profile,warned", [
    ("letsencrypt", None, True),
    ("letsencrypt-staging", "classic", True),
    ("letsencrypt", "shortlived", False),
    ("https://ca.example/dir", None, False),
])
def test_ip_name_at_letsencrypt_needs_shortlived(httpd_factory, ca, profile, warned):
    h = httpd_factory()
    h.write_conf(f"ACMECertificateAuthority {ca}\n" + ACCOUNT +
                 (f"ACMEProfile {profile}\n" if profile else "") +
                 "ACMEDomain 192.0.2.7 ip.test\n" + h.ssl_vhost("ip.test"), ca=False)
    r = h.configtest()
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert ("ACME02801: ACMEDomain 192.0.2.7" in out) == warned, out
    if warned:
        assert "Let's Encrypt issues certificates for IP addresses such as 192.0.2.7 only " \
               "under its profile shortlived" in out
        assert "add 'ACMEProfile shortlived'" in out


def test_profile_in_a_section_applies_to_its_certificate(httpd_factory, proxy):
    h = httpd_factory()
    conf(proxy, h, "<ACMEDomain short.test>\n    ACMEProfile shortlived\n</ACMEDomain>\n"
                   "ACMEDomain long.test\n" + h.ssl_vhost("short.test") + h.ssl_vhost("long.test"))
    h.start()
    wait_real_cert(h, "short.test")
    wait_real_cert(h, "long.test")
    asked = {o["identifiers"][0]["value"]: o.get("profile") for o in proxy.new_orders()}
    assert asked == {"short.test": "shortlived", "long.test": None}, asked
    assert meta(h, "short.test")["profile"] == "shortlived"
    assert "profile-configured" not in meta(h, "long.test")
