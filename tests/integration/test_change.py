"""Configuration changes lead to a new certificate on the next start, with the old one served
until then; an ACMEDomain removed from the configuration leaves its files alone."""
import os
import time

import acmetest
from test_httpd import ACCOUNT, wait_real_cert


def serial_and_names(h, name):
    c = acmetest.tls_peer_cert(h.https_port, name)
    return c.serial_number, sorted(acmetest.san_names(c)), c


def wait_new_cert(h, name, old_serial, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = acmetest.tls_peer_cert(h.https_port, name)
        if c.serial_number != old_serial and c.issuer != c.subject:
            return c
        time.sleep(0.1)
    raise AssertionError(f"{name}: still the old certificate\n{h.log_text()[-3000:]}")


def test_names_key_type_and_removal(httpd_factory):
    h = httpd_factory()
    vhost = h.ssl_vhost("c.test", ["www.c.test"])
    h.write_conf(ACCOUNT + "ACMEDomain c.test\n" + vhost)
    h.start()
    first = wait_real_cert(h, "c.test")
    h.stop()

    # A name added: the old certificate is served at once, then one with both names.
    h.write_conf(ACCOUNT + "ACMEDomain c.test www.c.test\n" + vhost)
    h.start()
    assert acmetest.tls_peer_cert(h.https_port, "c.test").serial_number == first.serial_number
    both = wait_new_cert(h, "c.test", first.serial_number)
    assert sorted(acmetest.san_names(both)) == ["c.test", "www.c.test"]
    assert "does not cover www.c.test" in h.log_text()
    h.stop()

    # Another key type.
    h.write_conf(ACCOUNT + "ACMEKeyType rsa2048\nACMEDomain c.test www.c.test\n" + vhost)
    h.start()
    rsa = wait_new_cert(h, "c.test", both.serial_number)
    assert rsa.public_key().key_size == 2048
    assert "has a ec256 key, ACMEKeyType asks for rsa2048" in h.log_text()
    h.stop()

    # A name removed.
    h.write_conf(ACCOUNT + "ACMEKeyType rsa2048\nACMEDomain c.test\n" + vhost)
    h.start()
    one = wait_new_cert(h, "c.test", rsa.serial_number)
    assert acmetest.san_names(one) == ["c.test"]
    assert "also names www.c.test, which the ACMEDomain no longer has" in h.log_text()
    h.stop()

    # The ACMEDomain removed: the server starts without it, its files stay in the store.
    h.write_conf(ACCOUNT + "ACMEDomain other.test\n" + h.ssl_vhost("other.test"))
    h.start()
    wait_real_cert(h, "other.test")
    assert os.path.islink(os.path.join(h.store, "domains", "c.test"))
    assert len(os.listdir(os.path.join(h.store, "archive", "c.test"))) == 4


def test_bad_staged_set_is_not_activated(httpd_factory):
    """A staged set whose key does not match its certificate is never activated: the active
    certificate stays, the log says why, the set is moved aside, and a good one follows."""
    import shutil
    import subprocess
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain bad.test\n" + h.ssl_vhost("bad.test"))
    h.start()
    first = wait_real_cert(h, "bad.test")
    h.stop()
    staged = os.path.join(h.store, "staging", "bad.test")
    os.makedirs(staged)
    shutil.copy(os.path.join(h.store, "domains", "bad.test", "fullchain.pem"), staged)
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", os.path.join(staged, "privkey.pem")],
                   check=True, capture_output=True)
    with open(os.path.join(staged, "meta.json"), "w") as f:
        f.write("{}")
    h.allowed_errors += ["ACME01021", "ACME02306"]  # refused, and counted as a failed attempt
    h.start()
    time.sleep(1.0)
    log = h.log_text()
    assert "ACME01021: bad.test" in log and "does not match" in log, log[-3000:]
    assert acmetest.tls_peer_cert(h.https_port, "bad.test").serial_number == first.serial_number
    assert not os.path.exists(staged)
    assert any(n.startswith(".rejected.bad.test.")
               for n in os.listdir(os.path.join(h.store, "staging")))


def test_another_ca_leads_to_a_new_certificate(httpd_factory, pebble):
    """Pointing ACMECertificateAuthority elsewhere renews from the new CA (here pebble behind
    a proxy: another directory URL, another account in the store)."""
    from chaosproxy import ChaosProxy
    proxy = ChaosProxy(pebble)
    try:
        h = httpd_factory()
        vhost = h.ssl_vhost("ca.test")
        h.write_conf(ACCOUNT + "ACMEDomain ca.test\n" + vhost)
        h.start()
        first = wait_real_cert(h, "ca.test")
        h.stop()
        h.write_conf(f"ACMECertificateAuthority {proxy.directory}\n"
                     f"ACMECACertificateFile {pebble.ca_file}\n" + ACCOUNT +
                     "ACMEDomain ca.test\n" + vhost, ca=False)
        h.start()
        assert acmetest.tls_peer_cert(h.https_port, "ca.test").serial_number == \
            first.serial_number
        second = wait_new_cert(h, "ca.test", first.serial_number)
        assert acmetest.san_names(second) == ["ca.test"]
        assert "which is no longer an ACMECertificateAuthority" in h.log_text()
        assert any(m == "POST" and "order-plz" in path for m, path in proxy.requests)
    finally:
        proxy.stop()
