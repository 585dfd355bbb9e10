"""<ACMEDomain> sections: settings of one certificate, with the global ones as defaults, in the
real Debian Apache against the real pebble."""
import os

import acmetest
from test_change import wait_new_cert
from test_httpd import ACCOUNT, issuer_is_self, wait_real_cert


def account_folders(h):
    return sorted(os.listdir(os.path.join(h.store, "accounts")))


def test_section_settings_apply_to_their_certificate_only(httpd_factory):
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEKeyType ec256\n"
                 "<ACMEDomain own.test www.own.test>\n"
                 "    ACMEKeyType rsa2048\n"
                 "    ACMEContactEmail owner@own.test\n"
                 "    ACMERenewWindow 10d\n"
                 "    ACMEChallenges http-01\n"
                 "</ACMEDomain>\n"
                 "ACMEDomain plain.test\n" +
                 h.ssl_vhost("own.test", ["www.own.test"]) + h.ssl_vhost("plain.test"))
    assert h.configtest().returncode == 0, h.log_text()
    h.start()
    own = wait_real_cert(h, "own.test")
    plain = wait_real_cert(h, "plain.test")
    assert sorted(acmetest.san_names(own)) == ["own.test", "www.own.test"]
    assert own.public_key().key_size == 2048, "the section's ACMEKeyType"
    assert plain.public_key().curve.name == "secp256r1", "the global ACMEKeyType"
    # The section's contact is an account of its own at the CA, kept apart from the server's.
    folders = account_folders(h)
    assert len(folders) == 2, folders
    assert folders[1].startswith(folders[0] + "-"), folders
    h.stop()


def test_section_ca_applies_only_to_its_certificate(httpd_factory):
    h = httpd_factory()
    h.allowed_errors.append("ACME01055: elsewhere.test")
    dead = acmetest.free_port()
    h.write_conf(ACCOUNT +
                 "<ACMEDomain elsewhere.test>\n"
                 f"    ACMECertificateAuthority https://127.0.0.1:{dead}/dir\n"
                 "</ACMEDomain>\n"
                 "ACMEDomain here.test\n" +
                 h.ssl_vhost("elsewhere.test") + h.ssl_vhost("here.test"))
    h.start()
    wait_real_cert(h, "here.test")
    h.wait_log(f"elsewhere.test: no certificate from https://127.0.0.1:{dead}/dir")
    # The other certificate's CA was never asked for elsewhere.test, and it keeps its fallback.
    assert "ACME00026: elsewhere.test" not in h.log_text()
    assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "elsewhere.test"))
    h.stop()


def test_changed_section_setting_gives_a_new_certificate(httpd_factory):
    h = httpd_factory()
    vhost = h.ssl_vhost("change.test")
    h.write_conf(ACCOUNT + "<ACMEDomain change.test>\n    ACMEKeyType ec256\n</ACMEDomain>\n" +
                 vhost)
    h.start()
    first = wait_real_cert(h, "change.test")
    h.stop()
    h.write_conf(ACCOUNT + "<ACMEDomain change.test>\n    ACMEKeyType rsa2048\n</ACMEDomain>\n" +
                 vhost)
    h.start()
    rsa = wait_new_cert(h, "change.test", first.serial_number)
    assert rsa.public_key().key_size == 2048
    assert "has a ec256 key, ACMEKeyType asks for rsa2048" in h.log_text()
    h.stop()
