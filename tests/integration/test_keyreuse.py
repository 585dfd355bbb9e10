"""ACMEKeyReuse: with `on` a renewal keeps the private key of the current certificate (its
public key, and so a DANE "3 1 1" TLSA record, stays the same); with the default `off` every
certificate gets a new key. Renewals asked for with `acmectl renew`, against the real pebble."""
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import acmetest
from test_acmectl import STATUS_LOCATION, acmectl, issued, staged_count, wait_new_serial
from test_httpd import ACCOUNT, wait_real_cert


def spki(h, name):
    """The DER SubjectPublicKeyInfo the server presents for name (what TLSA 3 1 x pins)."""
    cert = acmetest.tls_peer_cert(h.https_port, name)
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def renew(h, name, serial):
    staged = staged_count(h, name)
    r = acmectl(h, "renew", name)
    assert r.returncode == 0, r.stdout + r.stderr
    return wait_new_serial(h, name, serial, staged)


def test_key_reuse_on_keeps_the_key_over_two_renewals(httpd_factory):
    h, cert = issued(httpd_factory, "kr.test", extra="ACMEKeyReuse on\n")
    first = spki(h, "kr.test")
    # The first certificate had no key to reuse: the fallback's key is never taken.
    assert "ACME03710: kr.test" not in h.log_text()
    s2 = renew(h, "kr.test", cert.serial_number)
    assert spki(h, "kr.test") == first
    assert h.wait_log("ACME03710: kr.test: the new certificate keeps the private key of the "
                      "current one (ACMEKeyReuse on)")
    renew(h, "kr.test", s2)
    assert spki(h, "kr.test") == first
    assert h.log_text().count("ACME03710: kr.test") == 2
    # The same key file content in the store as well.
    with open(os.path.join(h.store, "domains", "kr.test", "privkey.pem"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    assert key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo) == first


def test_key_reuse_off_by_default_makes_a_new_key(httpd_factory):
    h, cert = issued(httpd_factory, "kn.test")
    first = spki(h, "kn.test")
    renew(h, "kn.test", cert.serial_number)
    assert spki(h, "kn.test") != first
    assert "ACME03710" not in h.log_text()



def test_key_reuse_per_certificate_in_a_section(httpd_factory):
    """In <ACMEDomain>: that certificate keeps its key, the other one gets a new key."""
    h = httpd_factory()
    h.write_conf(ACCOUNT + "<ACMEDomain ks.test>\n    ACMEKeyReuse on\n</ACMEDomain>\n"
                 "ACMEDomain kp.test\n" + h.ssl_vhost("ks.test") + h.ssl_vhost("kp.test"))
    h.start()
    ks, kp = wait_real_cert(h, "ks.test"), wait_real_cert(h, "kp.test")
    h.wait_driver()
    ks_key, kp_key = spki(h, "ks.test"), spki(h, "kp.test")
    renew(h, "ks.test", ks.serial_number)
    renew(h, "kp.test", kp.serial_number)
    assert spki(h, "ks.test") == ks_key
    assert spki(h, "kp.test") != kp_key


def test_key_reuse_after_a_key_type_change_makes_a_new_key(httpd_factory):
    h, cert = issued(httpd_factory, "kt.test", extra="ACMEKeyReuse on\n")
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    staged = staged_count(h, "kt.test")
    h.write_conf(ACCOUNT + STATUS_LOCATION + "ACMEKeyReuse on\nACMEKeyType rsa2048\n"
                 "ACMEDomain kt.test\n" + h.ssl_vhost("kt.test"))
    h.graceful()
    wait_new_serial(h, "kt.test", cert.serial_number, staged)
    assert isinstance(acmetest.tls_peer_cert(h.https_port, "kt.test").public_key(),
                      rsa.RSAPublicKey)
    assert "ACME03710: kt.test" not in h.log_text()


def test_key_reuse_never_keeps_a_revoked_certificates_key(httpd_factory):
    """acmectl revoke (a key compromise, say) renews with a new key even with ACMEKeyReuse on;
    the renewal after it keeps that new key again."""
    h, cert = issued(httpd_factory, "kv.test", extra="ACMEKeyReuse on\n")
    first = spki(h, "kv.test")
    staged = staged_count(h, "kv.test")
    r = acmectl(h, "revoke", "--reason", "keyCompromise", "kv.test", ca=True)
    assert r.returncode == 0, r.stdout + r.stderr
    s2 = wait_new_serial(h, "kv.test", cert.serial_number, staged)
    assert h.wait_log("ACME03711: kv.test: the certificate was revoked: the new one gets a new "
                      "key")
    second = spki(h, "kv.test")
    assert second != first
    renew(h, "kv.test", s2)
    assert spki(h, "kv.test") == second
