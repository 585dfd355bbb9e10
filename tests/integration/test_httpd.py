"""The module in the real Debian Apache against the real pebble (validating http-01 for real):
what an operator and a client see."""
import json
import os
import stat
import subprocess
import time

import pytest

import acmetest

ACCOUNT = "ACMEContactEmail admin@a.test\nACMEAgreement accepted\n"
TOKEN = "testTOKEN_abcdefghijklmnopqrstuvwxyz0123456789"


def issuer_is_self(cert):
    return cert.issuer == cert.subject


def wait_real_cert(h, name, timeout=30.0):
    """Waits until the vhost serves a certificate issued by pebble; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = acmetest.tls_peer_cert(h.https_port, name)
            if not issuer_is_self(last):
                return last
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{name}: no certificate from the CA after {timeout} s; "
                         f"last served: {last.subject if last else None}\n{h.log_text()[-3000:]}")


def served_chain_verifies(h, name, pebble, tmp_path):
    """The chain the server sends for name verifies against pebble's root."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{h.https_port}",
                        "-servername", name, "-showcerts"], input="", capture_output=True,
                       text=True, timeout=20)
    chain = tmp_path / f"served-{name}.pem"
    blocks = []
    inside = False
    for line in r.stdout.splitlines():
        if line.startswith("-----BEGIN CERTIFICATE-----"):
            inside = True
            blocks.append([])
        if inside:
            blocks[-1].append(line)
        if line.startswith("-----END CERTIFICATE-----"):
            inside = False
    chain.write_text("\n".join("\n".join(b) for b in blocks) + "\n")
    ok, msg = acmetest.verify_chain(str(chain), pebble.root_pem(), str(tmp_path))
    assert ok, msg
    return acmetest.split_pem_chain(chain.read_bytes())


def write_job_with_challenge(h, domain, host, token=TOKEN, keyauth=None, next_run=None):
    """A job file as the driver leaves it while a challenge is pending: the parent publishes its
    answer at start-up. next_run in the future keeps the driver from working on the domain."""
    os.makedirs(os.path.join(h.store, "jobs"), exist_ok=True)
    job = {"failures": 0, "challenges": [{"token": token, "host": host,
                                          "keyauth": keyauth or token + ".thumb",
                                          "expires": int(time.time()) + 3600}]}
    if next_run:
        job["next-run"] = next_run
    with open(os.path.join(h.store, "jobs", f"{domain}.json"), "w") as f:
        json.dump(job, f)


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_fallback_then_certificate_without_a_manual_step(httpd_factory, pebble, tmp_path, mpm):
    from chaosproxy import ChaosProxy
    proxy = ChaosProxy(pebble)
    try:
        h = httpd_factory(mpm=mpm)
        h.write_conf(f"ACMECertificateAuthority {proxy.directory}\n"
                     f"ACMECACertificateFile {pebble.ca_file}\n" + ACCOUNT +
                     "ACMEDomain a.test b.test\n" + h.ssl_vhost("a.test", ["b.test"]), ca=False)
        # The CA keeps the first request waiting: the server is seen as it is before it has a
        # certificate, however fast the CA would be.
        proxy.hold()
        h.start()
        assert proxy.wait_held(), h.log_text()[-3000:]
        # At once: both names get the temporary certificate, requests 503 and Retry-After.
        for name in ("a.test", "b.test"):
            first = acmetest.tls_peer_cert(h.https_port, name)
            assert issuer_is_self(first)
            assert sorted(acmetest.san_names(first)) == ["a.test", "b.test"]
            status, headers, body = acmetest.https_get(h.https_port, name)
            assert status == 503, body
            assert headers.get("Retry-After") == "30"
        # Then, by itself: issuance, graceful restart, the real chain for both names.
        t0 = time.monotonic()
        proxy.release()
        for name in ("a.test", "b.test"):
            cert = wait_real_cert(h, name)
            assert sorted(acmetest.san_names(cert)) == ["a.test", "b.test"]
        elapsed = time.monotonic() - t0
    finally:
        proxy.stop()
    chain = served_chain_verifies(h, "b.test", pebble, tmp_path)
    assert len(chain) >= 2
    status, _, body = acmetest.https_get(h.https_port, "a.test")
    assert status == 200 and b"hello" in body
    log = h.log_text()
    assert "ACME01070" in log and "ACME01020: a.test: new certificate activated" in log
    print(f"\n[{mpm}] CA answering -> real certificate served: {elapsed:.2f} s")


def test_store_ownership_as_root_with_user(httpd_factory):
    acmetest.require_root("to start httpd with User www-data")
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain own.test\n" + h.ssl_vhost("own.test"))
    h.start()
    wait_real_cert(h, "own.test")
    import pwd
    www = pwd.getpwnam("www-data").pw_uid
    key = os.path.join(h.store, "domains", "own.test", "privkey.pem")
    st = os.stat(key)
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(h.store, "archive")).st_mode) == 0o700
    for d in ("accounts", "jobs", "staging"):
        assert os.stat(os.path.join(h.store, d)).st_uid == www, d
    acct = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(h.store, "accounts"))
            for f in fs if f == "account.key"]
    assert acct and os.stat(acct[0]).st_uid == www
    assert stat.S_IMODE(os.stat(acct[0]).st_mode) == 0o600
    # The driver ran as the User, not as root.
    # A child is root between its fork and its switch to the User: wait for that switch.
    def children_are_user():
        children = h.children()
        try:
            return children and all(os.stat(f"/proc/{c}").st_uid == www for c in children)
        except FileNotFoundError:  # a child that has just ended
            return False
    acmetest.wait_until(children_are_user, 10, lambda: f"children as {www}: {h.children()}")


def test_two_domains_issued_concurrently_one_restart(httpd_factory, pebble, tmp_path):
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain one.test www.one.test\nACMEDomain two.test\n" +
                 h.ssl_vhost("one.test", ["www.one.test"]) + h.ssl_vhost("two.test"))
    h.start()
    one = wait_real_cert(h, "one.test")
    two = wait_real_cert(h, "two.test")
    assert sorted(acmetest.san_names(one)) == ["one.test", "www.one.test"]
    assert acmetest.san_names(two) == ["two.test"]
    served_chain_verifies(h, "two.test", pebble, tmp_path)
    log = h.log_text()
    assert log.count("ACME01070") == 1, "one graceful restart activates both"
    # Both orders were in flight at the same time: each one's order line comes before the
    # other's certificate.
    lines = log.splitlines()
    def first(needle):
        return next(i for i, line in enumerate(lines) if needle in line)
    assert first("ACME00026: one.test") < first("ACME00028: two.test")
    assert first("ACME00026: two.test") < first("ACME00028: one.test")


def test_restarts_keep_the_certificate_and_do_not_reorder(httpd_factory, pebble):
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain keep.test\n" + h.ssl_vhost("keep.test"))
    h.start()
    serial = wait_real_cert(h, "keep.test").serial_number
    # The generation that serves the certificate has its driver running: nothing is due.
    h.wait_driver()
    orders_before = pebble.requests().count("POST /order-plz")
    lines_before = h.log_text().count("ACME01062")
    assert lines_before == 1, "one order: the first certificate"
    h.graceful()
    assert h.wait_log("AH00493", count=2)  # our own restart, then this one
    # The new generation's driver has taken over and started what was due: nothing.
    h.wait_driver()
    assert acmetest.tls_peer_cert(h.https_port, "keep.test").serial_number == serial
    assert h.log_text().count("ACME01062") == lines_before
    h.stop()
    h.start()
    h.wait_driver()
    assert acmetest.tls_peer_cert(h.https_port, "keep.test").serial_number == serial
    assert h.log_text().count("ACME01062") == lines_before
    assert pebble.requests().count("POST /order-plz") == orders_before


def test_auto_restart_off_waits_for_the_operator(httpd_factory):
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEAutoRestart off\nACMEDomain manual.test\n" +
                 h.ssl_vhost("manual.test"))
    h.start()
    assert h.wait_log("ACME01054: manual.test")
    # The command of the platform the build is for (configure --with-restart-command).
    restart = os.environ.get("ACME_RESTART_COMMAND", "apachectl graceful")
    assert f"run '{restart}' to activate it" in h.log_text()
    # Staged, not asked for: no restart flag; the temporary certificate is still served.
    assert os.path.isdir(os.path.join(h.store, "staging", "manual.test"))
    assert not os.path.exists(os.path.join(h.store, "staging", "restart.wanted"))
    assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "manual.test"))
    h.graceful()
    cert = wait_real_cert(h, "manual.test", timeout=10)
    assert acmetest.san_names(cert) == ["manual.test"]
    # From start to the operator's restart, the server restarted by itself not once: the one
    # restart in the log is the operator's.
    log = h.log_text()
    assert "ACME01070" not in log and "ACME01059" not in log
    assert log.count("AH00493") == 1


def test_challenge_answers_and_404(httpd_factory):
    h = httpd_factory()
    # A file where a webroot client would put it: we must not serve it for our names.
    wk = acmetest.public_dir(h.docroot, ".well-known")
    acmetest.public_dir(wk, "acme-challenge")
    other = "fileTOKEN_abcdefghijklmnopqrstuvwxyz0123456789"
    with open(os.path.join(wk, "acme-challenge", other), "w") as f:
        f.write("from a file\n")
    far = int(time.time()) + 3600
    write_job_with_challenge(h, "tok.test", "tok.test", next_run=far)
    h.write_conf(ACCOUNT + "ACMEDomain tok.test www.tok.test\n" + h.ssl_vhost("tok.test"))
    h.start()
    path = "/.well-known/acme-challenge/"
    status, headers, body = acmetest.http_get(h.http_port, "tok.test", path + TOKEN)
    assert status == 200 and body == (TOKEN + ".thumb").encode()
    assert headers["Content-Type"].startswith("text/plain")
    # Our names: unknown tokens are 404, even when a file of that name exists.
    assert acmetest.http_get(h.http_port, "tok.test", path + other)[0] == 404
    assert acmetest.http_get(h.http_port, "www.tok.test", path + "x" * 20)[0] == 404
    # The token is for tok.test only.
    assert acmetest.http_get(h.http_port, "www.tok.test", path + TOKEN)[0] == 404
    # Bad tokens get no answer: too short or too long for a token, a slash (refused by httpd
    # itself unless AllowEncodedSlashes), a path out of the folder (httpd makes it /etc/passwd,
    # which the document root does not have).
    for bad in ("short", "../../../../etc/passwd", "a%2F" * 8, "A" * 300):
        status, _, body = acmetest.http_get(h.http_port, "tok.test", path + bad)
        assert status == 404 and b"root:" not in body, bad
    # Other hosts: declined, the file is served as usual.
    status, _, body = acmetest.http_get(h.http_port, "other.test", path + other)
    assert status == 200 and body == b"from a file\n"
    # Pending answers survive a graceful restart (shared memory does not).
    old_children = set(h.children())
    h.graceful()
    assert h.wait_log("ACME01043", count=2)
    # Once the children of the old generation are gone, the answer can only come from the new
    # generation's shared memory.
    acmetest.wait_until(lambda: not set(h.children()) & old_children, 20,
                        "the children of the old generation gone")
    for _ in range(4):
        status, _, body = acmetest.http_get(h.http_port, "tok.test", path + TOKEN)
        assert status == 200 and body == (TOKEN + ".thumb").encode()


def test_challenge_keeps_connection_alive(httpd_factory):
    import http.client
    h = httpd_factory()
    write_job_with_challenge(h, "ka.test", "ka.test", next_run=int(time.time()) + 3600)
    h.write_conf(ACCOUNT + "ACMEDomain ka.test\n" + h.ssl_vhost("ka.test"))
    h.start()
    conn = http.client.HTTPConnection("127.0.0.1", h.http_port, timeout=5)
    conn.connect()
    sock = conn.sock
    for _ in range(3):
        conn.putrequest("GET", "/.well-known/acme-challenge/" + TOKEN, skip_host=True)
        conn.putheader("Host", "ka.test")
        conn.endheaders()
        r = conn.getresponse()
        assert r.status == 200 and r.read() == (TOKEN + ".thumb").encode()
        assert r.getheader("Connection", "").lower() != "close"
        assert conn.sock is sock, "the server closed the connection"
    conn.close()


@pytest.mark.parametrize("guard", ["rewrite", "denied", "proxy"])
def test_issuance_whatever_the_url_space(httpd_factory, guard):
    """http-01 works with mod_rewrite forcing https, Require all denied, or a reverse proxy of
    everything: the answer comes before all of them."""
    h = httpd_factory()
    extra_mods = {"rewrite": ["rewrite"], "denied": [], "proxy": ["proxy", "proxy_http"]}[guard]
    guard_conf = {
        "rewrite": "RewriteEngine on\nRewriteRule ^ https://%{HTTP_HOST}%{REQUEST_URI} [R=301,L]\n",
        "denied": "<Directory />\n  Require all denied\n</Directory>\n"
                  "<Location />\n  Require all denied\n</Location>\n",
        "proxy": f"ProxyPass / http://127.0.0.1:{acmetest.free_port()}/\n",
    }[guard]
    h.write_conf(guard_conf + ACCOUNT + f"ACMEDomain {guard}.test\n" +
                 h.ssl_vhost(f"{guard}.test"), extra_modules=extra_mods)
    h.start()
    # The guard really guards: a normal request is redirected, denied or proxied (502).
    status = acmetest.http_get(h.http_port, f"{guard}.test", "/index.html")[0]
    assert status == {"rewrite": 301, "denied": 403, "proxy": 503}[guard]
    # What the guards log about the normal request above.
    h.allowed_errors += ["AH00957", "AH01114", "AH00959", "AH01630"]
    cert = wait_real_cert(h, f"{guard}.test")
    assert acmetest.san_names(cert) == [f"{guard}.test"]


def test_own_certificate_file_is_kept(httpd_factory, tmp_path):
    h = httpd_factory()
    key_path = os.path.join(h.root, "own.key")
    cert_path = os.path.join(h.root, "own.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key_path, "-out", cert_path,
                    "-subj", "/CN=mine.test", "-days", "2", "-addext",
                    "subjectAltName=DNS:mine.test"], check=True, capture_output=True)
    h.write_conf(ACCOUNT + "ACMEDomain mine.test\n" + h.ssl_vhost(
        "mine.test", extra=f"    SSLCertificateFile {cert_path}\n"
                           f"    SSLCertificateKeyFile {key_path}\n"))
    h.start()
    mine = acmetest.tls_peer_cert(h.https_port, "mine.test")
    assert mine.subject.rfc4514_string() == "CN=mine.test"
    status, headers, _ = acmetest.https_get(h.https_port, "mine.test")
    assert status == 200 and "Retry-After" not in headers
    assert "has an SSLCertificateFile (its own or a global one) and keeps it" in h.log_text()


CONFIG_ERRORS = [
    ("ACMEDomain bad_name.test", "ACMEDomain bad_name.test: not a host name"),
    ("ACMEDomain *.wild.test", "wildcard names need the dns-01 challenge"),
    ("ACMEDomain a.test\nACMEDomain b.test a.test", "a.test is already in ACMEDomain a.test"),
    ("ACMEDomain a.test a.test", "a.test is given twice"),
    # An IP in another spelling is the same name (found by tests/fuzz/fuzz_config).
    ("ACMEDomain 2001:db8::1 2001:DB8:0::1", "2001:DB8:0::1 is given twice"),
    ("ACMEDomain 2001:db8::1\nACMEDomain b.test 2001:DB8::0:1",
     "2001:db8::1 is already in ACMEDomain 2001:db8::1"),
    ("ACMEDomain", "ACMEDomain needs at least one name"),
    ("ACMECertificateAuthority http://ca.test/dir\nACMEDomain a.test",
     "expected an https:// ACME directory URL"),
    ("ACMEContactEmail nobody\nACMEDomain a.test", "ACMEContactEmail nobody: expected one e-mail"),
    ("ACMEAgreement yes\nACMEDomain a.test", "ACMEAgreement yes: the only value is 'accepted'"),
    ("ACMEKeyType dsa\nACMEDomain a.test", "ACMEKeyType dsa: expected ec256"),
    ("ACMEAutoRestart maybe\nACMEDomain a.test", "ACMEAutoRestart must be On or Off"),
    ("ACMEChallenges smtp-01\nACMEDomain a.test",
     "ACMEChallenges smtp-01: expected one or more of"),
    ("ACMEChallenges http-01 HTTP-01\nACMEDomain a.test", "ACMEChallenges HTTP-01 is given twice"),
    ("ACMEChallenges\nACMEDomain a.test", "ACMEChallenges needs at least one challenge type"),
    ("<ACMEDomain a.test>\nACMEStoreDir /tmp\n</ACMEDomain>",
     "ACMEStoreDir cannot be used inside <ACMEDomain>"),
    ("<ACMEDomain a.test>\nACMEAgreement accepted\n</ACMEDomain>",
     "ACMEAgreement cannot be used inside <ACMEDomain>"),
    ("<ACMEDomain a.test>\nACMEKeyType rsa2048\nACMEKeyType ec256\n</ACMEDomain>",
     "ACMEKeyType is duplicate in this <ACMEDomain> section"),
    ("<ACMEDomain a.test>\nACMEKeyType dsa\n</ACMEDomain>", "ACMEKeyType dsa: expected ec256"),
    ("<ACMEDomain a.test>\n<ACMEDomain b.test>\n</ACMEDomain>\n</ACMEDomain>",
     "<ACMEDomain> sections cannot be nested"),
    ("<ACMEDomain >\n</ACMEDomain>", "<ACMEDomain> needs at least one name"),
    ("ACMEDomain a.test\n<ACMEDomain b.test a.test>\n</ACMEDomain>",
     "a.test is already in ACMEDomain a.test"),
    ("ACMEChallengeCache redis\nACMEDomain a.test",
     "no socache provider 'redis' is loaded"),
    ("ACMEContactEmail a@b.test\nACMEContactEmail c@d.test", "ACMEContactEmail is duplicate"),
    ("<VirtualHost *:1234>\nACMEDomain a.test\n</VirtualHost>",
     "cannot occur within <VirtualHost> section"),
    ("ACMEChallenges tls-alpn-01\nACMEDomain a.test\n<VirtualHost *:443>\nServerName a.test\n"
     "SSLEngine on\n</VirtualHost>",
     "do not allow acme-tls/1; add the line 'Protocols http/1.1 acme-tls/1' to it"),
    ("ACMEChallenges tls-alpn-01\nACMEDomain a.test",
     "no TLS virtual host (SSLEngine on) receives the CA's handshakes for a.test"),
    # dns-01 and wildcards: what to add is named.
    ("ACMEDomain *.wild.test", "add 'ACMEChallenges http-01 dns-01' (or dns-01 alone) and "
                               "'ACMEDNSCommand /path/to/program'"),
    ("ACMEChallenges dns-01\nACMEDomain *.wild.test wild.test",
     "the dns-01 challenge (RFC 8555 section 7.1.3): add 'ACMEDNSCommand /path/to/program', "
     "which sets and removes the TXT records"),
    ("ACMEDNSCommand /bin/true\nACMEDomain wild.test *.wild.test",
     "wildcard names need the dns-01 challenge (RFC 8555 section 7.1.3): add 'ACMEChallenges "
     "http-01 dns-01'"),
    ("ACMEChallenges http-01 dns-01\nACMEDomain a.test",
     "ACMEChallenges lists dns-01 but no ACMEDNSCommand is set"),
    ("ACMEDomain *.*.wild.test", "ACMEDomain *.*.wild.test: not a host name"),
    ("ACMEDomain *wild.test", "ACMEDomain *wild.test: not a host name"),
    # 251 characters: a host name, but "_wildcard." before it is longer than a folder name.
    ("ACMEDomain *." + ".".join(["a" * 63] * 3) + "." + "b" * 52 + ".test",
     "too long for the store's folder name _wildcard.aaa"),
    # (with a CA of its own: the harness gives pebble's file otherwise)
    ("ACMECertificateAuthority https://127.0.0.1:1/dir\nACMECACertificateFile "
     "/nonexistent/ca.pem\nACMEDomain a.test",
     "ACMECACertificateFile /nonexistent/ca.pem: no such file (expected a PEM file of CA "
     "certificates)"),
    ("ACMECertificateAuthority https://127.0.0.1:1/dir\nACMECACertificateFile /etc\n"
     "ACMEDomain a.test", "ACMECACertificateFile /etc: no such file"),
    ("ACMEHttpProxyCACertificateFile /nonexistent/p.pem\nACMEDomain a.test",
     "ACMEHttpProxyCACertificateFile /nonexistent/p.pem: no such file (expected a PEM file of "
     "the CA certificates an https:// ACMEHttpProxy is checked against)"),
    ("ACMEDNSCommand bin/dns01\nACMEDomain a.test",
     "ACMEDNSCommand bin/dns01: expected an absolute path to a program"),
    ("ACMEDNSCommand /nonexistent/dns01 setup\nACMEDomain a.test",
     "ACMEDNSCommand /nonexistent/dns01: no such file"),
    ("ACMEDNSCommand /etc/passwd\nACMEDomain a.test", "ACMEDNSCommand /etc/passwd: not "
                                                        "executable"),
    ("ACMEDNSCommand", "ACMEDNSCommand needs a program"),
    ("ACMEDNSCommand /bin/true\nACMEDNSCommand /bin/false", "ACMEDNSCommand is duplicate"),
    ("ACMEDNSTimeout 0\nACMEDomain a.test", "ACMEDNSTimeout 0: expected a duration of at most 10"),
    ("ACMEDNSTimeout 50%\nACMEDomain a.test", "ACMEDNSTimeout 50%: expected a duration"),
    ("ACMEDNSPropagationTimeout 1h\nACMEDomain a.test",
     "ACMEDNSPropagationTimeout 1h: expected a duration of at most 5 minutes"),
    ("ACMEDNSResolver ns.example.test:53\nACMEDomain a.test",
     "ACMEDNSResolver ns.example.test:53: expected an IP address"),
    ("ACMEDNSResolver 127.0.0.1:99999\nACMEDomain a.test",
     "ACMEDNSResolver 127.0.0.1:99999: expected an IP address"),
    ('ACMEPreferredChain ""\nACMEDomain a.test',
     "ACMEPreferredChain takes one argument, the common name of the root"),
    (f'ACMEPreferredChain "{"R" * 65}"\nACMEDomain a.test', "1 to 64 characters"),
    ('ACMEPreferredChain "Root\tX1"\nACMEDomain a.test',
     "expected the common name of the root the chain should end at"),
    ('ACMEPreferredChain "Root A"\nACMEPreferredChain "Root B"\nACMEDomain a.test',
     "ACMEPreferredChain is duplicate"),
    ('<ACMEDomain a.test>\nACMEPreferredChain "A"\nACMEPreferredChain "B"\n</ACMEDomain>',
     "ACMEPreferredChain is duplicate in this <ACMEDomain> section"),
    ("ACMEExternalAccountBinding kid-1\nACMEDomain a.test",
     "ACMEExternalAccountBinding takes two arguments"),
    ("ACMEExternalAccountBinding k\x01d /etc/passwd\nACMEDomain a.test",
     "expected the key ID the CA gave"),
    ("ACMEExternalAccountBinding kid-1 /nonexistent/eab.key\nACMEDomain a.test",
     "ACME02800: ACMEExternalAccountBinding kid-1 /nonexistent/eab.key: /nonexistent/eab.key "
     "cannot be opened (No such file or directory)"),
    # root's and readable by all: refused, saying how to fix it (tests/integration/test_eab.py
    # makes files of the other kinds).
    ("ACMEExternalAccountBinding kid-1 /etc/passwd\nACMEDomain a.test",
     "it holds the MAC key of the CA account, which no one but"),
    ("ACMEExternalAccountBinding kid-1 /dev/null\nACMEDomain a.test",
     "/dev/null is not a regular file"),
    ("ACMEExternalAccountBinding a b\nACMEExternalAccountBinding c d",
     "ACMEExternalAccountBinding is duplicate"),
    ("ACMEProfile\nACMEDomain a.test", "ACMEProfile takes 1-2 arguments, NAME [mandatory]"),
    ("ACMEProfile short/lived\nACMEDomain a.test",
     "ACMEProfile short/lived: expected the name of a profile the CA offers"),
    ("ACMEProfile shortlived always\nACMEDomain a.test",
     "ACMEProfile shortlived always: the only word after the name is 'mandatory'"),
    ("ACMEProfile classic\nACMEProfile shortlived", "ACMEProfile is duplicate"),
]


@pytest.mark.parametrize("conf,message", CONFIG_ERRORS)
def test_configtest_names_the_mistake(httpd_factory, conf, message):
    h = httpd_factory()
    h.write_conf(conf + "\n", ca="ACMECertificateAuthority" not in conf)
    r = h.configtest()
    out = r.stdout + r.stderr + h.log_text()
    assert r.returncode != 0, out
    assert message in out, out


def test_configtest_warns_about_unused_domain(httpd_factory):
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain lonely.test\n" + h.ssl_vhost("other.test"))
    r = h.configtest()
    assert r.returncode == 0
    out = r.stdout + r.stderr + h.log_text()
    assert "ACMEDomain lonely.test" in out and "no VirtualHost has one of its names" in out


def test_runs_unprivileged(httpd_factory):
    """httpd started as an ordinary user (no User switch): the store belongs to that user and
    everything works the same."""
    acmetest.require_root("to become another user")
    import pwd
    www = pwd.getpwnam("www-data")
    h = httpd_factory(user=None)
    h.write_conf(ACCOUNT + "ACMEDomain plain.test\n" + h.ssl_vhost("plain.test"))
    for root, dirs, files in os.walk(h.root):
        for n in dirs + files + [""]:
            os.chown(os.path.join(root, n), www.pw_uid, www.pw_gid)

    def become_www():
        os.setgid(www.pw_gid)
        os.setgroups([])
        os.setuid(www.pw_uid)

    r = subprocess.run([acmetest.HTTPD_BIN, "-d", h.root, "-f", h.conf_path, "-k", "start"],
                       preexec_fn=become_www, capture_output=True, text=True, timeout=60,
                       env=h.env())
    assert r.returncode == 0, r.stdout + r.stderr + h.log_text()
    cert = wait_real_cert(h, "plain.test")
    assert acmetest.san_names(cert) == ["plain.test"]
    key = os.path.join(h.store, "domains", "plain.test", "privkey.pem")
    st = os.stat(key)
    assert st.st_uid == www.pw_uid and stat.S_IMODE(st.st_mode) == 0o600
    assert all(os.stat(f"/proc/{p}").st_uid == www.pw_uid for p in h.processes())


def test_ip_address_certificate(httpd_factory, pebble, tmp_path):
    """RFC 8738: a certificate for an IP address, validated over http-01 with Host = the IP."""
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain 127.0.0.1\n" + h.ssl_vhost("127.0.0.1"))
    h.start()
    cert = wait_real_cert(h, "127.0.0.1")
    assert acmetest.san_names(cert) == ["127.0.0.1"]


def test_broken_config_on_disk_blocks_the_automatic_restart(httpd_factory):
    """A half-edited configuration must not take the server down: the automatic restart runs
    configtest first and waits."""
    h = httpd_factory()
    good = ACCOUNT + "ACMEDomain edit.test\n" + h.ssl_vhost("edit.test")
    h.write_conf(good)
    h.start()
    pid = h.pid()
    with open(h.conf_path, "a") as f:
        f.write("\nThisIsNotADirective on\n")
    assert h.wait_log("ACME01072", timeout=30), h.log_text()[-3000:]
    h.allowed_errors += ["ACME01072", "Invalid command 'ThisIsNotADirective'"]
    # The server runs on, not restarted, with what it had: the temporary certificate, 503.
    assert h.pid() == pid and pid in h.processes()
    assert "AH00493" not in h.log_text()
    assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "edit.test"))
    assert acmetest.https_get(h.https_port, "edit.test")[0] == 503
    assert os.path.isdir(os.path.join(h.store, "staging", "edit.test"))
    h.write_conf(good)
    h.graceful()
    cert = wait_real_cert(h, "edit.test", timeout=15)
    assert acmetest.san_names(cert) == ["edit.test"]


def tls_cert_for_auth(port, name, auth):
    """The certificate served to a TLS 1.2 client that accepts only ECDSA or only RSA."""
    import socket
    import ssl
    from cryptography import x509
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256" if auth == "ec" else
                    "ECDHE-RSA-AES128-GCM-SHA256")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname=name) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_two_key_types_both_served(httpd_factory):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEKeyType ec256 rsa2048\nACMEDomain kt.test www.kt.test\n" +
                 h.ssl_vhost("kt.test", ["www.kt.test"]))
    h.start()

    def both_real():
        try:
            ecc = tls_cert_for_auth(h.https_port, "kt.test", "ec")
            rsac = tls_cert_for_auth(h.https_port, "kt.test", "rsa")
        except OSError:
            return None
        return None if issuer_is_self(ecc) or issuer_is_self(rsac) else (ecc, rsac)

    ecc, rsac = acmetest.wait_until(both_real, 30, lambda: "certificates from the CA for "
                                    "ECDSA-only and RSA-only clients\n" + h.log_text()[-3000:])
    assert isinstance(ecc.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(rsac.public_key(), rsa.RSAPublicKey)
    assert rsac.public_key().key_size == 2048
    for c in (ecc, rsac):
        assert "Pebble" in c.issuer.rfc4514_string()
        assert sorted(acmetest.san_names(c)) == ["kt.test", "www.kt.test"]
    assert os.path.islink(os.path.join(h.store, "domains", "kt.test"))
    assert os.path.islink(os.path.join(h.store, "domains", "kt.test_rsa2048"))
    assert h.log_text().count("ACME01070") == 1, "one restart activates both"
