"""Configuration changes lead to a new certificate on the next start, with the old one served
until then; an ACMEDomain removed from the configuration leaves its files alone."""
import os
import time

import pytest

import acmetest
from chaosproxy import ChaosProxy
from test_httpd import ACCOUNT, wait_real_cert


def serial_and_names(h, name):
    c = acmetest.tls_peer_cert(h.https_port, name)
    return c.serial_number, sorted(acmetest.san_names(c)), c


def wait_new_cert(h, name, old_serial, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = acmetest.tls_peer_cert(h.https_port, name)
            if c.serial_number != old_serial and c.issuer != c.subject:
                return c
        except OSError:
            pass  # a restart under way
        time.sleep(0.1)
    raise AssertionError(f"{name}: still the old certificate\n{h.log_text()[-3000:]}")


@pytest.fixture
def proxy(pebble):
    """pebble behind a ChaosProxy that can hold the CA's answers."""
    p = ChaosProxy(pebble)
    yield p
    p.stop()


def conf_via(proxy, h, body):
    """httpd.conf with the proxy as the CA."""
    h.write_conf(f"ACMECertificateAuthority {proxy.directory}\n"
                 f"ACMECACertificateFile {h.pebble.ca_file}\n" + ACCOUNT + body, ca=False)


def start_holding(proxy, h, name, serial):
    """Starts h while the CA keeps the driver waiting, checks that the certificate with serial
    is what clients get meanwhile, and lets the CA answer."""
    proxy.hold()
    h.start()
    assert proxy.wait_held(), h.log_text()[-3000:]
    assert acmetest.tls_peer_cert(h.https_port, name).serial_number == serial
    proxy.release()


def test_names_key_type_and_removal(httpd_factory, proxy):
    h = httpd_factory()
    vhost = h.ssl_vhost("c.test", ["www.c.test"])
    conf_via(proxy, h, "ACMEDomain c.test\n" + vhost)
    h.start()
    first = wait_real_cert(h, "c.test")
    h.stop()

    # A name added: the old certificate is served until one with both names is ready.
    conf_via(proxy, h, "ACMEDomain c.test www.c.test\n" + vhost)
    start_holding(proxy, h, "c.test", first.serial_number)
    both = wait_new_cert(h, "c.test", first.serial_number)
    assert sorted(acmetest.san_names(both)) == ["c.test", "www.c.test"]
    assert "does not cover www.c.test" in h.log_text()
    h.stop()

    # Another key type.
    conf_via(proxy, h, "ACMEKeyType rsa2048\nACMEDomain c.test www.c.test\n" + vhost)
    start_holding(proxy, h, "c.test", both.serial_number)
    rsa = wait_new_cert(h, "c.test", both.serial_number)
    assert rsa.public_key().key_size == 2048
    assert "has a ec256 key, ACMEKeyType asks for rsa2048" in h.log_text()
    h.stop()

    # A name removed.
    conf_via(proxy, h, "ACMEKeyType rsa2048\nACMEDomain c.test\n" + vhost)
    start_holding(proxy, h, "c.test", rsa.serial_number)
    one = wait_new_cert(h, "c.test", rsa.serial_number)
    assert acmetest.san_names(one) == ["c.test"]
    assert "also names www.c.test, which the ACMEDomain no longer has" in h.log_text()
    h.stop()

    # The ACMEDomain removed: the server starts without it, its files stay in the store.
    conf_via(proxy, h, "ACMEDomain other.test\n" + h.ssl_vhost("other.test"))
    h.start()
    wait_real_cert(h, "other.test")
    assert os.readlink(os.path.join(h.store, "domains", "c.test")) == "../archive/c.test/4"
    assert sorted(os.listdir(os.path.join(h.store, "archive", "c.test"))) == ["1", "2", "3", "4"]


def test_bad_staged_set_is_not_activated(httpd_factory, proxy):
    """A staged set whose key does not match its certificate is never activated: the active
    certificate stays, the log says why, the set is moved aside, and a good one follows."""
    import shutil
    import subprocess
    h = httpd_factory()
    vhost = h.ssl_vhost("bad.test", ["www.bad.test"])
    conf_via(proxy, h, "ACMEDomain bad.test\n" + vhost)
    h.start()
    first = wait_real_cert(h, "bad.test")
    h.stop()
    staged = os.path.join(h.store, "staging", "bad.test")
    os.makedirs(staged)
    shutil.copy(os.path.join(h.store, "domains", "bad.test", "fullchain.pem"), staged)
    planted_key = os.path.join(staged, "privkey.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", planted_key],
                   check=True, capture_output=True)
    with open(planted_key, "rb") as f:
        planted = f.read()
    with open(os.path.join(staged, "meta.json"), "w") as f:
        f.write("{}")
    # With the next start the configuration asks for one more name, so a new certificate is
    # due: the one that follows the refused set.
    conf_via(proxy, h, "ACMEDomain bad.test www.bad.test\n" + vhost)
    h.allowed_errors.append("ACME01021")
    start_holding(proxy, h, "bad.test", first.serial_number)
    lines = [line for line in h.log_text().splitlines() if "ACME01021: bad.test" in line]
    assert len(lines) == 1 and "does not match the private key" in lines[0], lines
    assert not os.path.exists(staged)
    rejected = [n for n in os.listdir(os.path.join(h.store, "staging"))
                if n.startswith(".rejected.bad.test.")]
    assert len(rejected) == 1 and rejected[0] in lines[0]
    with open(os.path.join(h.store, "staging", rejected[0], "privkey.pem"), "rb") as f:
        assert f.read() == planted
    # A good one follows by itself (allowing for a first backoff, should the refusal count as
    # a failed attempt), with both names; the refused key is never served.
    good = wait_new_cert(h, "bad.test", first.serial_number, timeout=100)
    assert sorted(acmetest.san_names(good)) == ["bad.test", "www.bad.test"]
    chain = acmetest.split_pem_chain(
        open(os.path.join(h.store, "domains", "bad.test", "fullchain.pem"), "rb").read())
    assert chain[0].serial_number == good.serial_number
    with open(os.path.join(h.store, "domains", "bad.test", "privkey.pem"), "rb") as f:
        assert f.read() != planted


def test_another_ca_leads_to_a_new_certificate(httpd_factory, proxy):
    """Pointing ACMECertificateAuthority elsewhere renews from the new CA (here pebble behind
    a proxy: another directory URL, another account in the store)."""
    h = httpd_factory()
    vhost = h.ssl_vhost("ca.test")
    h.write_conf(ACCOUNT + "ACMEDomain ca.test\n" + vhost)
    h.start()
    first = wait_real_cert(h, "ca.test")
    h.stop()
    assert not proxy.requests
    conf_via(proxy, h, "ACMEDomain ca.test\n" + vhost)
    start_holding(proxy, h, "ca.test", first.serial_number)
    second = wait_new_cert(h, "ca.test", first.serial_number)
    assert acmetest.san_names(second) == ["ca.test"]
    assert "which is no longer an ACMECertificateAuthority" in h.log_text()
    assert any(m == "POST" and "order-plz" in path for m, path in proxy.requests)
    accounts = os.listdir(os.path.join(h.store, "accounts"))
    assert len(accounts) == 2, accounts
