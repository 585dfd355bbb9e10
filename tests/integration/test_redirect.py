"""ACMERequireHttps, ACMEHstsMaxAge and ACMEPortMap in the real Debian Apache against the real
pebble: plain-HTTP requests for our names go to https once the CA's certificate is served (never
while only the fallback is), before mod_rewrite; HSTS with `permanent`, on https only; the port
map in the Location and in the choice of challenge types."""
import http.client

import acmetest
from chaosproxy import ChaosProxy
from test_httpd import ACCOUNT, issuer_is_self, wait_real_cert

HSTS = "Strict-Transport-Security"


def request(h, host, path, method="GET"):
    """A plain-HTTP request with Host = host; (status, headers) with lowercase header names."""
    conn = http.client.HTTPConnection(acmetest.LOOPBACK, h.http_port, timeout=5)
    try:
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", host)
        if method == "POST":
            conn.putheader("Content-Length", "0")
        conn.endheaders()
        r = conn.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


def wait_redirect(h, host, path="/"):
    """After the graceful restart that activates the certificate, a new connection may still
    reach a child of the old generation for a moment: wait for the redirect with a deadline."""
    last = []

    def redirected():
        last[:] = [request(h, host, path)]
        return last[0][0] in (301, 302)
    acmetest.wait_until(redirected, 15, f"{host}: the redirect to https")
    return last[0]


def held_server(h, proxy, body, extra_modules=()):
    """Starts h against the proxy that holds the CA's first answer: the server is seen as it is
    with only the fallback certificate, however fast the CA would be."""
    h.write_conf(f"ACMECertificateAuthority {proxy.directory}\n"
                 f"ACMECACertificateFile {h.pebble.ca_file}\n" + ACCOUNT + body,
                 extra_modules=extra_modules, ca=False)
    proxy.hold()
    h.start()
    assert proxy.wait_held(), h.log_text()[-3000:]


def test_temporary_redirect_only_after_the_real_certificate(httpd_factory, pebble):
    proxy = ChaosProxy(pebble)
    try:
        h = httpd_factory()
        held_server(h, proxy, "ACMERequireHttps temporary\nACMEDomain red.test www.red.test\n" +
                    h.ssl_vhost("red.test", ["www.red.test"]))
        # Only the fallback: no redirect (https would show a self-signed certificate).
        assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "red.test"))
        status, headers = request(h, "red.test", "/index.html?a=1")
        assert status == 200 and "location" not in headers
        proxy.release()
        wait_real_cert(h, "red.test")
    finally:
        proxy.stop()
    base = f"https://red.test:{h.https_port}"
    status, headers = wait_redirect(h, "red.test", "/index.html?a=1&b=%20x")
    assert status == 302
    assert headers["location"] == base + "/index.html?a=1&b=%20x"
    assert HSTS.lower() not in headers
    # Every name of the certificate, in the Host's own case folded as httpd folds it.
    status, headers = request(h, "www.red.test", "/dir/page")
    assert (status, headers["location"]) == (302, f"https://www.red.test:{h.https_port}/dir/page")
    # HEAD as GET; other methods keep their method: 307.
    assert request(h, "red.test", "/", "HEAD")[0] == 302
    status, headers = request(h, "red.test", "/form", "POST")
    assert (status, headers["location"]) == (307, base + "/form")
    # The CA's http-01 path is answered as before, never redirected.
    status, headers = request(h, "red.test", "/.well-known/acme-challenge/unknownTOKEN")
    assert status == 404 and "location" not in headers
    # A name that is not ours is left alone.
    status, headers = request(h, "other.test", "/index.html")
    assert status == 200 and "location" not in headers
    # temporary: no HSTS on https either.
    status, headers, _ = acmetest.https_get(h.https_port, "red.test", "/index.html")
    assert status == 200 and HSTS not in headers
    assert "ACME03500: red.test: plain-HTTP request redirected to " + base in h.log_text()


def test_permanent_redirect_and_hsts_with_the_port_map(httpd_factory, pebble):
    proxy = ChaosProxy(pebble)
    try:
        h = httpd_factory()
        held_server(h, proxy, "ACMERequireHttps permanent\nACMEHstsMaxAge 600\n"
                    "ACMEPortMap https:8443\nACMEDomain perm.test\n" + h.ssl_vhost("perm.test"))
        # The fallback: 503 without HSTS, and no redirect.
        status, headers, _ = acmetest.https_get(h.https_port, "perm.test")
        assert status == 503 and HSTS not in headers
        status, headers = request(h, "perm.test", "/")
        assert status == 200 and "location" not in headers
        proxy.release()
        wait_real_cert(h, "perm.test")
    finally:
        proxy.stop()
    status, headers = wait_redirect(h, "perm.test", "/a/b?c=d")
    # The port is the map's (what the visitor's side reaches), not the local TLS listener's.
    assert (status, headers["location"]) == (301, "https://perm.test:8443/a/b?c=d")
    assert HSTS.lower() not in headers, "HSTS is never sent over plain HTTP (RFC 6797 7.2)"
    status, headers, _ = acmetest.https_get(h.https_port, "perm.test", "/index.html")
    assert status == 200 and headers[HSTS] == "max-age=600"
    # On error answers too.
    status, headers, _ = acmetest.https_get(h.https_port, "perm.test", "/missing")
    assert status == 404 and headers[HSTS] == "max-age=600"
    assert request(h, "perm.test", "/form", "POST")[0] == 308


def test_section_overrides_and_runs_before_mod_rewrite(httpd_factory):
    h = httpd_factory()
    # The operator's own rule sends /old elsewhere for every host; ours comes first for our
    # names with a certificate.
    rewrite = ("RewriteEngine on\n"
               "RewriteRule ^/old$ http://rewritten.example/new [R=302,L]\n")
    h.write_conf(rewrite + ACCOUNT + "ACMERequireHttps permanent\nACMEPortMap http:80 https:443\n"
                 "<ACMEDomain off.test>\n    ACMERequireHttps off\n</ACMEDomain>\n"
                 "<ACMEDomain tmp.test>\n    ACMERequireHttps temporary\n</ACMEDomain>\n"
                 "ACMEDomain on.test\n" +
                 h.ssl_vhost("off.test") + h.ssl_vhost("tmp.test") + h.ssl_vhost("on.test"),
                 extra_modules=["rewrite"])
    assert h.configtest().returncode == 0, h.log_text()
    h.start()
    for name in ("off.test", "tmp.test", "on.test"):
        wait_real_cert(h, name)
    # ACMEPortMap https:443: the Location has no port.
    status, headers = wait_redirect(h, "on.test", "/old")
    assert (status, headers["location"]) == (301, "https://on.test/old")
    assert request(h, "tmp.test", "/old")[1]["location"] == "https://tmp.test/old"
    # The section's off: the operator's rule sees the request, as it sees a foreign name's.
    assert request(h, "off.test", "/old")[1]["location"] == "http://rewritten.example/new"
    assert request(h, "off.test", "/index.html")[0] == 200
    assert request(h, "foreign.test", "/old")[1]["location"] == "http://rewritten.example/new"
    assert HSTS not in acmetest.https_get(h.https_port, "off.test", "/index.html")[1]
    assert HSTS not in acmetest.https_get(h.https_port, "tmp.test", "/index.html")[1]
    assert acmetest.https_get(h.https_port, "on.test", "/index.html")[1][HSTS] == \
        "max-age=31536000"


def test_configtest_refuses_bad_values(httpd_factory):
    h = httpd_factory()
    cases = [
        ("ACMERequireHttps always", "ACMERequireHttps always: expected off, temporary"),
        ("ACMERequireHttps temporary\nACMERequireHttps off", "ACMERequireHttps is duplicate"),
        ("ACMEHstsMaxAge forever", "ACMEHstsMaxAge forever: expected a duration"),
        ("ACMEHstsMaxAge 800d", "ACMEHstsMaxAge 800d: expected a duration of at most 732 days"),
        ("ACMEHstsMaxAge -5", "ACMEHstsMaxAge -5: expected a duration"),
        ("ACMEPortMap http:0", "ACMEPortMap http:0: the port must be a number from 1 to 65535"),
        ("ACMEPortMap https:65536", "ACMEPortMap https:65536: the port must be a number"),
        ("ACMEPortMap http:8o", "ACMEPortMap http:8o: the port must be a number"),
        ("ACMEPortMap ftp:21", "ACMEPortMap ftp:21: expected http:PORT or https:PORT"),
        ("ACMEPortMap 80", "ACMEPortMap 80: expected http:PORT or https:PORT"),
        ("ACMEPortMap http:80 http:81", "ACMEPortMap http:81: http is given twice"),
        ("ACMEPortMap http:80 https:443 http:81", "ACMEPortMap: expected one or two"),
        ("ACMEPortMap http:80\nACMEPortMap https:443", "ACMEPortMap is duplicate"),
        ("<ACMEDomain sec.test>\n  ACMEPortMap http:80\n</ACMEDomain>",
         "ACMEPortMap cannot be used inside <ACMEDomain>"),
        ("<VirtualHost *:80>\n  ACMERequireHttps permanent\n</VirtualHost>",
         "ACMERequireHttps cannot occur within <VirtualHost> section"),
    ]
    for line, message in cases:
        h.write_conf(ACCOUNT + line + "\nACMEDomain bad.test\n")
        r = h.configtest()
        assert r.returncode != 0, line
        assert message in r.stderr + r.stdout, (line, r.stderr)
    # What is accepted, in and out of a section.
    h.write_conf(ACCOUNT + "ACMERequireHttps temporary\nACMEHstsMaxAge 0\n"
                 "ACMEPortMap HTTPS:8443 http:80\n"
                 "<ACMEDomain good.test>\n  ACMERequireHttps permanent\n"
                 "  ACMEHstsMaxAge 365d\n</ACMEDomain>\n")
    r = h.configtest()
    assert r.returncode == 0, r.stderr


def test_port_map_decides_what_can_answer(httpd_factory):
    h = httpd_factory()
    # No TLS vhost: only http-01 could answer, and the map says the CA's port 80 does not reach
    # the plain listener.
    h.write_conf(ACCOUNT + "ACMEPortMap http:8080\nACMEDomain pm.test\n")
    r = h.configtest()
    assert r.returncode == 0, r.stderr
    assert "ACME03512: pm.test: no challenge type can answer for pm.test: for http-01 " \
        "ACMEPortMap http:8080 says the plain listener is reached on port 8080, and the CA's " \
        "http-01 requests come to port 80" in r.stderr, r.stderr
    # The map that lets port 80 in, or none: no warning.
    for conf in ("ACMEPortMap http:80\n", ""):
        h.write_conf(ACCOUNT + conf + "ACMEDomain pm.test\n")
        r = h.configtest()
        assert r.returncode == 0 and "ACME03512" not in r.stderr, (conf, r.stderr)
    # Without a plain listener either, the warning names Listen and the map.
    h.write_conf(ACCOUNT + "ACMEPortMap https:8443\nACMEDomain pm.test\n" +
                 h.ssl_vhost("pm.test"), plain=False)
    r = h.configtest()
    assert "ACME03512: pm.test: no challenge type can answer for pm.test: for http-01 the " \
        "server has no plain-HTTP listener (Listen 80 would be one), and for tls-alpn-01 " \
        "ACMEPortMap https:8443 says the TLS listener is reached on port 8443" in r.stderr, \
        r.stderr
    # dns-01 configured: nothing to warn about.
    h.write_conf(ACCOUNT + "ACMEPortMap http:8080\nACMEChallenges dns-01\n"
                 "ACMEDNSCommand /bin/true\nACMEDomain pm.test\n")
    r = h.configtest()
    assert r.returncode == 0 and "ACME03512" not in r.stderr, r.stderr
    # A type that ACMEChallenges counts on and the map rules out: refused.
    h.write_conf(ACCOUNT + "ACMEPortMap http:8080\nACMEChallenges http-01\nACMEDomain pm.test\n")
    r = h.configtest()
    assert r.returncode != 0
    assert "ACME03510: ACMEChallenges http-01: ACMEPortMap http:8080 says" in r.stderr, r.stderr
    h.write_conf(ACCOUNT + "ACMEPortMap https:8443\nACMEChallenges tls-alpn-01\n"
                 "Protocols http/1.1 acme-tls/1\nACMEDomain pm.test\n" + h.ssl_vhost("pm.test"))
    r = h.configtest()
    assert r.returncode != 0
    assert "ACME03511: ACMEChallenges tls-alpn-01 (ACMEDomain pm.test): ACMEPortMap " \
        "https:8443 says" in r.stderr, r.stderr


def test_each_certificate_redirects_to_the_port_of_its_tls_vhost(httpd_factory):
    """Without ACMEPortMap, the Location of each certificate's names carries the port of the
    TLS vhost that serves that certificate (found by name, in constant time, per request),
    not another certificate's."""
    h = httpd_factory()
    other_port = acmetest.free_port()
    two = (f"<VirtualHost 127.0.0.1:{other_port}>\n    ServerName two.test\n"
           "    SSLEngine on\n</VirtualHost>\n")
    h.write_conf(f"Listen 127.0.0.1:{other_port}\n" + ACCOUNT + "ACMERequireHttps temporary\n"
                 "ACMEDomain one.test\nACMEDomain two.test\nACMEDomain three.test\n" +
                 h.ssl_vhost("one.test") + two + h.ssl_vhost("three.test"))
    h.start()
    wait_real_cert(h, "one.test")
    wait_real_cert(h, "three.test")
    acmetest.wait_until(lambda: not issuer_is_self(acmetest.tls_peer_cert(other_port,
                                                                          "two.test")),
                        30, "two.test: the CA's certificate on the other port")
    for name, port in (("one.test", h.https_port), ("two.test", other_port),
                       ("three.test", h.https_port)):
        status, headers = wait_redirect(h, name, "/p")
        assert (status, headers["location"]) == (302, f"https://{name}:{port}/p"), name
