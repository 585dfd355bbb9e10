"""ACMEHttpProxy: every request to the CA goes through an HTTP CONNECT proxy (the small one of
connectproxy.py, started by the test), with its credentials sent to the proxy and never shown
in the error log, the store or acmectl's output; a proxy that is down or refuses the
credentials is named (masked) in the log line of the failed attempt."""
import os
import subprocess

import acmetest
from connectproxy import ConnectProxy
from test_acmectl import ACMECTL
from test_httpd import ACCOUNT, wait_real_cert

USER, PASSWORD = "acmeuser", "s3cr3t-Pr0xy-pw"


def store_text(h):
    """Everything in the store that is text, with its path (for the grep for the password)."""
    out = []
    for dirpath, _, files in os.walk(h.store):
        for f in files:
            path = os.path.join(dirpath, f)
            if os.path.islink(path):
                continue
            with open(path, "rb") as fh:
                out.append((path, fh.read()))
    return out


def assert_no_password(h, *texts):
    assert PASSWORD not in h.log_text()
    for path, data in store_text(h):
        assert PASSWORD.encode() not in data, path
    for t in texts:
        assert PASSWORD not in t


def failure_line(h, name, needle):
    """Waits for the log line of the failed attempt for name that holds needle."""
    def find():
        for ln in h.log_text().splitlines():
            if needle in ln and f"{name}:" in ln and "next attempt" in ln:
                return ln
        return None
    return acmetest.wait_until(find, 30, lambda: h.log_text()[-3000:])


def test_issuance_goes_through_the_proxy_with_credentials(httpd_factory, pebble):
    proxy = ConnectProxy(USER, PASSWORD)
    try:
        h = httpd_factory()
        h.write_conf(ACCOUNT + f"ACMEHttpProxy http://{USER}:{PASSWORD}@127.0.0.1:{proxy.port}\n"
                     "ACMEDomain px.test\n" + h.ssl_vhost("px.test"))
        assert h.configtest().returncode == 0
        h.start()
        wait_real_cert(h, "px.test")
        # Every connection to the CA was a CONNECT through the proxy, with the credentials.
        pebble_target = f"127.0.0.1:{pebble.port}"
        assert proxy.targets(), "no CONNECT seen"
        assert set(proxy.targets()) == {pebble_target}, proxy.seen
        assert all(a == proxy.expected_auth for a in proxy.auths()), proxy.seen
        assert_no_password(h)
    finally:
        proxy.stop()


def test_proxy_down_fails_naming_the_proxy(httpd_factory):
    """With the proxy gone nothing reaches the CA: the attempt fails, the log line names the
    proxy (password masked), the certificate and the next attempt."""
    proxy = ConnectProxy(USER, PASSWORD)
    port = proxy.port
    proxy.stop()  # the port stays free: nothing listens there now
    h = httpd_factory()
    h.allowed_errors = ["ACME01055", "ACME01000"]
    h.write_conf(ACCOUNT + f"ACMEHttpProxy http://{USER}:{PASSWORD}@127.0.0.1:{port}\n"
                 "ACMEDomain pd.test\n" + h.ssl_vhost("pd.test"))
    h.start()
    masked = f"http://{USER}:***@127.0.0.1:{port}"
    line = failure_line(h, "pd.test", f"through the proxy {masked}: ")
    assert "ACME01055: pd.test: no certificate from" in line, line
    assert_no_password(h)


def test_wrong_credentials_answer_407_logged_clearly(httpd_factory):
    proxy = ConnectProxy(USER, PASSWORD)
    try:
        h = httpd_factory()
        h.allowed_errors = ["ACME01055", "ACME01000"]
        h.write_conf(ACCOUNT + f"ACMEHttpProxy http://{USER}:wrong-{PASSWORD}@127.0.0.1:"
                     f"{proxy.port}\nACMEDomain pw.test\n" + h.ssl_vhost("pw.test"))
        h.start()
        needle = (f"through the proxy http://{USER}:***@127.0.0.1:{proxy.port}: the proxy "
                  "refused the credentials (407 Proxy Authentication Required)")
        line = failure_line(h, "pw.test", needle)
        assert "ACME01055: pw.test: no certificate from" in line, line
        assert proxy.auths() and all(a and a != proxy.expected_auth for a in proxy.auths())
        assert "wrong-" + PASSWORD not in h.log_text()
        assert_no_password(h)
    finally:
        proxy.stop()


def test_configtest_refuses_a_bad_proxy_url_without_echoing_it(httpd_factory):
    h = httpd_factory()
    h.write_conf(ACCOUNT + f"ACMEHttpProxy socks5://{USER}:{PASSWORD}@127.0.0.1:1080\n"
                 "ACMEDomain pb.test\n" + h.ssl_vhost("pb.test"))
    r = h.configtest()
    assert r.returncode != 0
    assert (f"ACMEHttpProxy socks5://{USER}:***@127.0.0.1:1080: expected "
            "http://[user:password@]host:port") in r.stderr, r.stderr
    assert PASSWORD not in r.stdout + r.stderr
    h.write_conf(ACCOUNT + f"ACMEHttpProxy http://{USER}:{PASSWORD}@127.0.0.1:3128/path\n"
                 "ACMEDomain pb.test\n" + h.ssl_vhost("pb.test"))
    r = h.configtest()
    assert r.returncode != 0
    assert f"ACMEHttpProxy http://{USER}:***@127.0.0.1:3128/path: a proxy URL has no path" \
        in r.stderr, r.stderr
    assert PASSWORD not in r.stdout + r.stderr


def test_acmectl_talks_to_the_ca_through_the_proxy(httpd_factory, pebble):
    """acmectl --proxy: revoke asks the CA through the proxy; a wrong password is reported with
    the proxy masked, also at debug level (-v -v)."""
    proxy = ConnectProxy(USER, PASSWORD)
    try:
        h = httpd_factory()
        h.write_conf(ACCOUNT + f"ACMEHttpProxy http://{USER}:{PASSWORD}@127.0.0.1:{proxy.port}\n"
                     "ACMEDomain pa.test\n" + h.ssl_vhost("pa.test"))
        h.start()
        wait_real_cert(h, "pa.test")
        h.stop()
        base = [ACMECTL, "--store", h.store]
        r = subprocess.run(base + ["-v", "-v", "--proxy",
                                   f"http://{USER}:bad-{PASSWORD}@127.0.0.1:{proxy.port}",
                                   "revoke", "pa.test", "--ca-file", pebble.ca_file],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0
        assert (f"through the proxy http://{USER}:***@127.0.0.1:{proxy.port}: the proxy refused "
                "the credentials (407 Proxy Authentication Required)") in r.stderr, r.stderr
        assert PASSWORD not in r.stdout + r.stderr
        before = len(proxy.targets())
        r = subprocess.run(base + ["--proxy", f"http://{USER}:{PASSWORD}@127.0.0.1:{proxy.port}",
                                   "revoke", "pa.test", "--ca-file", pebble.ca_file],
                           capture_output=True, text=True, timeout=60)
        assert "pa.test: certificate serial" in r.stdout and " revoked at " in r.stdout, \
            r.stdout + r.stderr
        assert len(proxy.targets()) > before
        assert proxy.auths()[-1] == proxy.expected_auth
        assert PASSWORD not in r.stdout + r.stderr
    finally:
        proxy.stop()


def test_https_proxy_checked_against_its_own_ca_file(httpd_factory, workdir, pebble):
    """An https:// proxy: TLS to the proxy checked against ACMEHttpProxyCACertificateFile; without
    it (the system roots) the proxy's certificate is refused and the attempt fails naming it."""
    pki = acmetest.make_listener_ca(acmetest.public_dir(workdir, "proxy-pki"))
    proxy = ConnectProxy(USER, PASSWORD, tls_cert=pki["cert"], tls_key=pki["key"])
    try:
        url = f"https://{USER}:{PASSWORD}@127.0.0.1:{proxy.port}"
        h = httpd_factory()
        h.allowed_errors = ["ACME01055", "ACME01000"]
        h.write_conf(ACCOUNT + f"ACMEHttpProxy {url}\nACMEDomain ph.test\n" +
                     h.ssl_vhost("ph.test"))
        h.start()
        failure_line(h, "ph.test", f"through the proxy https://{USER}:***@127.0.0.1:{proxy.port}: ")
        assert not proxy.targets()  # no CONNECT: the TLS to the proxy failed first
        h.stop()
        h.write_conf(ACCOUNT + f"ACMEHttpProxy {url}\n"
                     f"ACMEHttpProxyCACertificateFile {pki['ca']}\nACMEDomain ph.test\n" +
                     h.ssl_vhost("ph.test"))
        h.start()
        wait_real_cert(h, "ph.test")
        assert set(proxy.targets()) == {f"127.0.0.1:{pebble.port}"}, proxy.seen
        assert all(a == proxy.expected_auth for a in proxy.auths()), proxy.seen
        assert_no_password(h)
    finally:
        proxy.stop()
