"""`ACMEDomain name auto`: the certificate's names are gathered from the ServerName and
ServerAlias of the vhosts that carry one of its names, in the real Debian Apache against the
real pebble (docs/apache.md, "Names from the vhosts")."""
import json
import os

import acmetest
from test_change import wait_new_cert
from test_dns import DnsCommand
from test_httpd import ACCOUNT, wait_real_cert


def configtest_output(h):
    r = h.configtest()
    return r.returncode, r.stdout + r.stderr + h.log_text()


def test_served_certificate_has_the_vhost_names_and_a_new_alias_renews(httpd_factory):
    h = httpd_factory()
    vhost = h.ssl_vhost("auto.test", ["www.auto.test", "shop.auto.test", "localhost"])
    h.write_conf(ACCOUNT + "ACMEDomain auto.test auto\n" + vhost)
    code, out = configtest_output(h)
    assert code == 0, out
    h.start()
    first = wait_real_cert(h, "auto.test")
    assert sorted(acmetest.san_names(first)) == ["auto.test", "shop.auto.test", "www.auto.test"]
    # The alias that is no DNS name is left out, and said so.
    assert "ACME03601: ACMEDomain auto.test auto" in h.log_text()
    assert "has the name localhost" in h.log_text()
    assert "ACME03600: ACMEDomain auto.test auto" in h.log_text()
    # The other names get the same certificate.
    assert acmetest.tls_peer_cert(h.https_port, "www.auto.test").serial_number == \
        first.serial_number
    # An alias added to the vhost: a graceful restart, and a new certificate carries it.
    h.write_conf(ACCOUNT + "ACMEDomain auto.test auto\n" +
                 h.ssl_vhost("auto.test", ["www.auto.test", "shop.auto.test", "new.auto.test"]))
    h.graceful()
    # The restart that activates it comes a minute after the one that activated the first.
    second = wait_new_cert(h, "new.auto.test", first.serial_number, timeout=100)
    assert sorted(acmetest.san_names(second)) == \
        ["auto.test", "new.auto.test", "shop.auto.test", "www.auto.test"]
    assert "ACME03600: ACMEDomain auto.test auto (" in h.log_text()
    assert "the vhosts add www.auto.test shop.auto.test new.auto.test" in h.log_text()
    assert "does not cover new.auto.test" in h.log_text()
    with open(os.path.join(h.store, "domains", "auto.test", "meta.json")) as f:
        assert sorted(json.load(f)["names"]) == \
            ["auto.test", "new.auto.test", "shop.auto.test", "www.auto.test"]
    # An alias removed: the next certificate leaves it out. (A stop and start: the automatic
    # restart that activates it comes at most once a minute within one server's life.)
    h.stop()
    h.write_conf(ACCOUNT + "ACMEDomain auto.test auto\n" +
                 h.ssl_vhost("auto.test", ["www.auto.test", "new.auto.test"]))
    h.start()
    third = wait_new_cert(h, "auto.test", second.serial_number, timeout=60)
    assert sorted(acmetest.san_names(third)) == ["auto.test", "new.auto.test", "www.auto.test"]
    assert "also names shop.auto.test, which the ACMEDomain no longer has" in h.log_text()
    h.stop()


def test_section_form_gathers_names_with_its_settings(httpd_factory):
    h = httpd_factory()
    h.write_conf(ACCOUNT + "<ACMEDomain sec.test auto>\n    ACMEKeyType rsa2048\n"
                 "</ACMEDomain>\n" + h.ssl_vhost("sec.test", ["www.sec.test"]))
    h.start()
    cert = wait_real_cert(h, "www.sec.test")
    assert sorted(acmetest.san_names(cert)) == ["sec.test", "www.sec.test"]
    assert cert.public_key().key_size == 2048
    h.stop()


def test_wildcard_alias_without_dns01_is_a_configtest_error(httpd_factory):
    h = httpd_factory()
    h.allowed_errors.append("ACME03602")
    h.write_conf(ACCOUNT + "ACMEDomain wild.test auto\n" +
                 h.ssl_vhost("wild.test", ["*.wild.test"]))
    code, out = configtest_output(h)
    assert code != 0, out
    assert "ACME03602: ACMEDomain wild.test auto (" in out, out
    assert f"the VirtualHost at {h.conf_path}:" in out, out
    assert "wildcard alias *.wild.test" in out, out
    assert "ACMEChallenges http-01 dns-01" in out, out
    assert "ACMEDNSCommand" in out, out


def test_wildcard_alias_with_dns01(httpd_factory, pebble):
    h = httpd_factory()
    dns = DnsCommand(h, pebble)
    h.write_conf(ACCOUNT + "<ACMEDomain wdns.test auto>\n" + dns.conf() + "</ACMEDomain>\n" +
                 h.ssl_vhost("wdns.test", ["*.wdns.test"]))
    code, out = configtest_output(h)
    assert code == 0, out
    h.start()
    cert = wait_real_cert(h, "foo.wdns.test", timeout=60)
    assert sorted(acmetest.san_names(cert)) == ["*.wdns.test", "wdns.test"]
    h.stop()


def test_name_of_another_acmedomain_stays_with_it(httpd_factory):
    """The vhost carries a name of each: the configured name stays with its ACMEDomain, the
    auto one leaves it out and says so; each vhost serves its own certificate."""
    h = httpd_factory()
    # two.test's own vhost first: httpd gives a request for two.test to the first vhost that
    # has the name (SNI included).
    h.write_conf(ACCOUNT + "ACMEDomain one.test auto\nACMEDomain two.test\n" +
                 h.ssl_vhost("two.test") +
                 h.ssl_vhost("one.test", ["two.test", "www.one.test"]))
    code, out = configtest_output(h)
    assert code == 0, out
    assert "ACME03603: ACMEDomain one.test auto (" in out, out
    assert "two.test of the VirtualHost at" in out and "stays with ACMEDomain two.test" in out
    h.start()
    one = wait_real_cert(h, "one.test")
    two = wait_real_cert(h, "two.test")
    assert sorted(acmetest.san_names(one)) == ["one.test", "www.one.test"]
    assert acmetest.san_names(two) == ["two.test"]
    h.stop()


def test_more_names_than_a_certificate_holds_is_a_configtest_error(httpd_factory):
    h = httpd_factory()
    h.allowed_errors.append("ACME03604")
    aliases = [f"n{i}.many.test" for i in range(100)]
    h.write_conf(ACCOUNT + "ACMEDomain many.test auto\n" + h.ssl_vhost("many.test", aliases))
    code, out = configtest_output(h)
    assert code != 0, out
    assert "ACME03604: ACMEDomain many.test auto (" in out, out
    assert "more than 100 names" in out, out


def test_auto_names_with_an_ip_alias(httpd_factory):
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain ipauto.test auto\n" +
                 h.ssl_vhost("ipauto.test", ["127.0.0.1"]))
    code, out = configtest_output(h)
    assert code == 0, out
    h.start()
    cert = wait_real_cert(h, "ipauto.test")
    assert sorted(acmetest.san_names(cert)) == ["127.0.0.1", "ipauto.test"]
    h.stop()
