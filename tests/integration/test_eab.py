"""External account binding (RFC 8555 section 7.3.4) against a pebble that requires it
(externalAccountBindingRequired, externalAccountMACKeys): the right key gets a certificate, no
binding or a wrong key gives an error that says what to fix and backs off as a configuration
error (no retry storm), and a key file others can read stops the server at configtest. The MAC
key never reaches the error log or the store."""
import base64
import json
import os
import pwd
import time

import acmetest
from conftest import EAB_KEYS
from test_httpd import ACCOUNT, issuer_is_self, wait_real_cert

NEW_ACCOUNT = "POST /sign-me-up"  # pebble's newAccount path
TWELVE_HOURS = 12 * 3600


def key_file(h, text, mode=0o600, owner=None):
    """The MAC key file, root's (the test runs as root) and 0600 unless told otherwise."""
    path = os.path.join(h.root, "eab.key")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, owner, owner)
    return path


def conf(h, name, eab=None):
    """A configuration for name at h's pebble, with ACMEExternalAccountBinding eab (kid, path)."""
    line = f"ACMEExternalAccountBinding {eab[0]} {eab[1]}\n" if eab else ""
    h.write_conf(ACCOUNT + line + f"ACMEDomain {name}\n" + h.ssl_vhost(name))


def job(h, name):
    with open(os.path.join(h.store, "jobs", f"{name}.json")) as f:
        return json.load(f)


def new_accounts(pebble):
    return pebble.requests().count(NEW_ACCOUNT)


def assert_key_nowhere(h, key):
    """Neither the key's text nor its bytes are in the error log or in any file of the store."""
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert key not in h.log_text()
    for root, _, files in os.walk(h.store):
        for n in files:
            with open(os.path.join(root, n), "rb") as f:
                data = f.read()
            assert key.encode() not in data and raw not in data, os.path.join(root, n)


def test_binding_gets_a_certificate(httpd_factory, pebble_eab):
    acmetest.require_root("the key file must be root's")
    h = httpd_factory(ca=pebble_eab)
    # As some CAs show it: base64 with padding, on a line of its own.
    key = EAB_KEYS["kid-1"]
    path = key_file(h, base64.b64encode(base64.urlsafe_b64decode(key)).decode() + "\n")
    conf(h, "eab.test", ("kid-1", path))
    assert h.configtest().returncode == 0
    h.start()
    cert = wait_real_cert(h, "eab.test")
    assert acmetest.san_names(cert) == ["eab.test"]
    with open(pebble_eab.log, errors="replace") as f:
        assert 'Successful newAccount Binding with CA using kid "kid-1"' in f.read()
    assert_key_nowhere(h, key)


def test_no_binding_says_the_ca_requires_one(httpd_factory, pebble_eab):
    h = httpd_factory(ca=pebble_eab)
    conf(h, "noeab.test")
    before = new_accounts(pebble_eab)
    h.start()
    assert h.wait_log("ACME01055: noeab.test", timeout=20), h.log_text()[-2000:]
    h.allowed_errors.append("ACME01055")
    line = [x for x in h.log_text().splitlines() if "ACME01055" in x][0]
    assert "externalAccountRequired" in line, line
    assert "the CA requires an external account binding: set ACMEExternalAccountBinding" in line
    # A configuration error: the next attempt in 12 hours, not in a minute.
    wait = job(h, "noeab.test")["next-run"] - time.time()
    assert TWELVE_HOURS * 0.75 <= wait <= TWELVE_HOURS * 1.25, wait
    assert new_accounts(pebble_eab) - before == 1
    assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "noeab.test"))


def test_wrong_key_names_the_problem_without_a_retry_storm(httpd_factory, pebble_eab):
    acmetest.require_root("the key file must be root's")
    h = httpd_factory(ca=pebble_eab)
    wrong = base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("=")
    conf(h, "wrongeab.test", ("kid-1", key_file(h, wrong)))
    before = new_accounts(pebble_eab)
    h.start()
    assert h.wait_log("ACME01055: wrongeab.test", timeout=20), h.log_text()[-2000:]
    h.allowed_errors.append("ACME01055")
    line = [x for x in h.log_text().splitlines() if "ACME01055" in x][0]
    assert "refused the external account binding with key ID kid-1" in line, line
    assert "unauthorized (HTTP 403)" in line and "verification error" in line, line
    assert "ACMEExternalAccountBinding must name the key ID and the MAC key" in line, line
    assert "the configuration must change" in line and "(attempt 1)" in line, line
    wait = job(h, "wrongeab.test")["next-run"] - time.time()
    assert TWELVE_HOURS * 0.75 <= wait <= TWELVE_HOURS * 1.25, wait
    # No storm: over 20 seconds and a graceful restart, the one newAccount stays the only one.
    time.sleep(10)
    h.graceful()
    assert h.wait_log("AH00493")
    h.wait_driver()
    time.sleep(10)
    assert new_accounts(pebble_eab) - before == 1, pebble_eab.requests()[-20:]
    assert h.log_text().count("ACME01055") == 1
    assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "wrongeab.test"))
    assert_key_nowhere(h, wrong)
    # The operator fixes the key file: the next start tries again at once, not in 12 hours.
    key_file(h, EAB_KEYS["kid-1"])
    h.graceful()
    assert h.wait_log("ACME02309: wrongeab.test: the configuration changed since the last "
                      "failed attempt"), h.log_text()[-2000:]
    wait_real_cert(h, "wrongeab.test")
    assert_key_nowhere(h, EAB_KEYS["kid-1"])


def test_key_file_others_can_read_is_refused(httpd_factory, pebble_eab):
    acmetest.require_root("to give the file to another user")
    h = httpd_factory(ca=pebble_eab)
    www = pwd.getpwnam("www-data").pw_uid
    for mode, owner, words in [
            (0o640, None, ["can be read or written by group or others (mode 0640)",
                           "to fix: chmod 600 "]),
            (0o600, www, ["belongs to www-data (uid", "to fix: chown root:root "]),
            (0o644, www, ["belongs to www-data", "and can be read or written by group or others",
                          "chown root:root ", " && chmod 600 "])]:
        path = key_file(h, EAB_KEYS["kid-1"], mode, owner)
        conf(h, "perm.test", ("kid-1", path))
        r = h.configtest()
        out = r.stdout + r.stderr
        assert r.returncode != 0, out
        assert f"ACME02800: ACMEExternalAccountBinding kid-1 {path}: {path} " in out, out
        for w in words:
            assert w in out, out
        assert "the server does not start with it" in out
        assert EAB_KEYS["kid-1"] not in out
        os.unlink(path)


def test_key_file_without_a_key_is_refused(httpd_factory, pebble_eab):
    acmetest.require_root("the key file must be root's")
    h = httpd_factory(ca=pebble_eab)
    for text in ["", "not a key!\n", "-----BEGIN PRIVATE KEY-----\nMIIB\n"]:
        path = key_file(h, text)
        conf(h, "content.test", ("kid-1", path))
        r = h.configtest()
        out = r.stdout + r.stderr
        assert r.returncode != 0, out
        assert f"{path} does not hold a MAC key" in out, out
        assert "not a key" not in out and "BEGIN" not in out


def test_binding_in_a_section_applies_to_its_certificate(httpd_factory, pebble_eab):
    """A binding of an <ACMEDomain> section is that certificate's (an account of its own at the
    CA); the other certificate has none, and this CA refuses it."""
    acmetest.require_root("the key file must be root's")
    h = httpd_factory(ca=pebble_eab)
    path = key_file(h, EAB_KEYS["kid-1"])
    h.write_conf(ACCOUNT + f"<ACMEDomain bound.test>\n    ACMEExternalAccountBinding kid-1 {path}\n"
                 "</ACMEDomain>\nACMEDomain unbound.test\n" +
                 h.ssl_vhost("bound.test") + h.ssl_vhost("unbound.test"))
    h.allowed_errors.append("ACME01055: unbound.test")
    h.start()
    wait_real_cert(h, "bound.test")
    assert h.wait_log("ACME01055: unbound.test", timeout=20), h.log_text()[-2000:]
    assert "set ACMEExternalAccountBinding" in h.log_text()
    folders = sorted(os.listdir(os.path.join(h.store, "accounts")))
    assert len(folders) == 2 and folders[1].startswith(folders[0] + "-"), folders
    assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "unbound.test"))
    assert_key_nowhere(h, EAB_KEYS["kid-1"])
    h.stop()

    # A section's key file is checked like the global one, naming the section.
    os.chmod(path, 0o644)
    r = h.configtest()
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert f"ACME02800: <ACMEDomain bound.test>: ACMEExternalAccountBinding kid-1 {path}: " in out
    assert f"chmod 600 {path}" in out
