"""acmectl import: certificates and accounts made by Debian's certbot and by Debian's mod_md
against the real pebble become mod_acme's, and the server serves them at once without ordering
anything or registering an account; a renewal later uses the imported account. Bad inputs (a
link out of the folder, a key that is not the certificate's, a garbage file) are named and
leave the store as it was."""
import os
import shutil
import socket
import ssl
import subprocess
import sys

import pytest

import acmetest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import bench  # noqa: E402  (mod_md's configuration against pebble)

BUILDDIR = os.environ.get("top_builddir") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
ACMECTL = os.path.join(BUILDDIR, "acmectl")

ORDER, ACCOUNT = "POST /order-plz", "POST /sign-me-up"


def acmectl(store, *args):
    r = subprocess.run([ACMECTL, "--store", store, *args], capture_output=True, text=True,
                       timeout=60)
    return r.returncode, r.stdout + r.stderr


def make_store(path):
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def leaf_serial(path):
    return acmetest.split_pem_chain(open(path, "rb").read())[0].serial_number


def certbot_certonly(pebble, config_dir, names):
    """Debian's certbot gets a certificate from the test's pebble (http-01 answered by its own
    standalone server on the port pebble validates)."""
    if not shutil.which("certbot"):
        pytest.fail("certbot is not installed (Debian package certbot, scripts/install-deps)")
    env = dict(os.environ, REQUESTS_CA_BUNDLE=pebble.ca_file)
    argv = ["certbot", "certonly", "--standalone", "--http-01-port", str(pebble.http_port),
            "--http-01-address", acmetest.LOOPBACK, "--server", pebble.directory,
            "--config-dir", config_dir, "--work-dir", config_dir + "-work",
            "--logs-dir", config_dir + "-logs", "--agree-tos", "-m", "a@b.test",
            "--non-interactive"]
    for n in names:
        argv += ["-d", n]
    acmetest.check_port_free(pebble.http_port, "certbot standalone")
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def certbot_dir(workdir, pebble):
    """/etc/letsencrypt as certbot leaves it, for ci.test and www.ci.test."""
    acmetest.require_root("certbot's standalone server and a server with User www-data")
    d = os.path.join(workdir, "letsencrypt")
    certbot_certonly(pebble, d, ["ci.test", "www.ci.test"])
    return d


def serve_conf(h, body, names):
    h.write_conf("ACMEContactEmail a@b.test\nACMEAgreement accepted\n" + body +
                 h.ssl_vhost(names[0], names[1:]))


def assert_served_without_ca(h, pebble, name, serials):
    """Starts h, checks that name is served with one of serials at once and that the renewal
    driver's first pass ordered nothing and registered no account."""
    mark = pebble.request_count()
    h.start()
    served = acmetest.tls_peer_cert(h.https_port, name).serial_number
    assert served in serials, (hex(served), [hex(s) for s in serials], h.log_text()[-3000:])
    h.wait_driver()
    # The driver's first pass starts the work that is due (ACME01062) before it says it works
    # (ACME02304, which wait_driver awaited): none was started, none will be until renewal.
    log = h.log_text()
    assert "ACME01062" not in log and "ACME01022" not in log, log[-3000:]
    made = pebble.requests()[mark:]
    assert ORDER not in made and ACCOUNT not in made, made
    return mark


def test_import_certbot_serves_at_once_and_renews_with_its_account(certbot_dir, pebble,
                                                                   httpd_factory):
    serial = leaf_serial(os.path.join(certbot_dir, "live", "ci.test", "fullchain.pem"))
    h = httpd_factory()
    make_store(h.store)
    # --dry-run changes nothing.
    rc, out = acmectl(h.store, "import", "certbot", "--dry-run", certbot_dir)
    assert rc == 0, out
    assert "ACME03304: ci.test: would be imported" in out, out
    assert not os.path.exists(os.path.join(h.store, "domains", "ci.test"))

    rc, out = acmectl(h.store, "import", "certbot", certbot_dir)
    assert rc == 0, out
    assert "ACME03301: ci.test: imported" in out and "ACME03314: account" in out, out
    assert "ACMEDomain ci.test www.ci.test" in out, out
    assert os.readlink(os.path.join(h.store, "domains", "ci.test")) == "../archive/ci.test/1"
    acct = os.path.join(h.store, "accounts", acmetest_ca_id(pebble.directory))
    assert os.stat(os.path.join(acct, "account.key")).st_uid == h_user_uid(h)
    # Once more: nothing to do.
    rc, out = acmectl(h.store, "import", "certbot", certbot_dir)
    assert rc == 0 and "ACME03303: ci.test: already active" in out, out

    serve_conf(h, "ACMEDomain ci.test www.ci.test\n", ["ci.test", "www.ci.test"])
    mark = assert_served_without_ca(h, pebble, "ci.test", [serial])

    # A renewal asked for now: a new order with the imported account, no newAccount.
    rc, out = acmectl(h.store, "renew", "ci.test")
    assert rc in (0, 1) and "renewal requested" in out, out
    assert h.wait_log("ACME01054", timeout=60), h.log_text()[-3000:]
    made = pebble.requests()[mark:]
    assert ORDER in made and ACCOUNT not in made, made


def acmetest_ca_id(url):
    rest = url.split("://", 1)[1]
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in rest)


def h_user_uid(h):
    import pwd
    return pwd.getpwnam(h.user).pw_uid if h.user else os.geteuid()


def md_store(workdir, pebble, names):
    """A store made by Debian's mod_md against pebble: two key types, activated by a graceful
    restart as mod_md needs, then the server stopped."""
    if not os.path.exists(os.path.join(acmetest.MODULES_DIR, "mod_md.so")):
        pytest.fail("Debian's mod_md is missing (package apache2)")
    m = bench.Server(os.path.join(acmetest.public_dir(workdir, "httpd"), "md-import"), pebble,
                     "md")
    m.conf([names], extra="MDPrivateKeys secp256r1 rsa2048\n")
    m.start()
    try:
        assert m.wait_log("AH10059", timeout=90), m.log_text()[-3000:]
        m.graceful()
        pubcert = os.path.join(m.root, "md", "domains", names[0], "pubcert.pem")
        acmetest.wait_until(lambda: os.path.exists(pubcert), 30,
                            lambda: m.log_text()[-3000:])
        m.settle()
    finally:
        m.stop()
    return os.path.join(m.root, "md")


def test_import_md_serves_at_once(workdir, pebble, httpd_factory):
    acmetest.require_root("a server with User www-data")
    names = ["md.test", "www.md.test"]
    md = md_store(workdir, pebble, names)
    dom = os.path.join(md, "domains", "md.test")
    serials = [leaf_serial(os.path.join(dom, "pubcert.secp256r1.pem")),
               leaf_serial(os.path.join(dom, "pubcert.pem"))]
    with open(os.path.join(md, "accounts", os.listdir(os.path.join(md, "accounts"))[0],
                           "account.pem")) as f:
        assert "ENCRYPTED" in f.read()  # mod_md's pass phrase is needed, and used

    h = httpd_factory()
    make_store(h.store)
    rc, out = acmectl(h.store, "import", "md", md)
    assert rc == 0, out
    assert "ACME03301: md.test: imported" in out and "ACME03301: md.test_rsa2048: imported" in out
    assert "ACME03314: account" in out and "ACMEKeyType ec256 rsa2048" in out, out
    serve_conf(h, "<ACMEDomain md.test www.md.test>\n    ACMEKeyType ec256 rsa2048\n"
                  "</ACMEDomain>\n", names)
    assert_served_without_ca(h, pebble, "md.test", serials)
    # Both key types are served: each to the client that asks for its kind.
    assert served_serial(h.https_port, "md.test", "ECDHE-ECDSA-AES128-GCM-SHA256") == serials[0]
    assert served_serial(h.https_port, "md.test", "ECDHE-RSA-AES128-GCM-SHA256") == serials[1]


def served_serial(port, name, cipher):
    """The serial the server presents to a TLS 1.2 client that offers only cipher (an ECDSA or
    an RSA suite: mod_ssl picks the certificate of that key type)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(cipher)
    with socket.create_connection((acmetest.LOOPBACK, port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname=name) as tls:
            der = tls.getpeercert(binary_form=True)
    from cryptography import x509
    return x509.load_der_x509_certificate(der).serial_number


def store_state(store):
    out = {}
    for root, dirs, files in os.walk(store):
        for n in dirs + files:
            p = os.path.join(root, n)
            out[os.path.relpath(p, store)] = os.readlink(p) if os.path.islink(p) else None
    return out


def test_import_refuses_bad_inputs_and_keeps_the_store(workdir, certbot_dir, pebble):
    bad = os.path.join(workdir, "letsencrypt-bad")
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(certbot_dir, bad, symlinks=True)
    outside = os.path.join(workdir, "outside")
    os.makedirs(outside, exist_ok=True)

    def lineage(name):
        shutil.copytree(os.path.join(bad, "archive", "ci.test"), os.path.join(bad, "archive", name))
        os.makedirs(os.path.join(bad, "live", name))
        for f in ("privkey", "fullchain"):
            os.symlink(f"../../archive/{name}/{f}1.pem",
                       os.path.join(bad, "live", name, f + ".pem"))
        shutil.copy(os.path.join(bad, "renewal", "ci.test.conf"),
                    os.path.join(bad, "renewal", name + ".conf"))
        return os.path.join(bad, "archive", name)

    # The right key, but outside the folder: never read.
    a = lineage("out.test")
    shutil.copy(os.path.join(a, "privkey1.pem"), os.path.join(outside, "privkey.pem"))
    os.unlink(os.path.join(bad, "live", "out.test", "privkey.pem"))
    os.symlink(os.path.join(outside, "privkey.pem"),
               os.path.join(bad, "live", "out.test", "privkey.pem"))
    # Another key than the certificate's.
    a = lineage("mismatch.test")
    with open(os.path.join(a, "privkey1.pem"), "wb") as f:
        f.write(ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    # Garbage for a chain.
    a = lineage("garbage.test")
    with open(os.path.join(a, "fullchain1.pem"), "wb") as f:
        f.write(os.urandom(3000))

    store = make_store(os.path.join(workdir, "import-bad-store"))
    rc, out = acmectl(store, "import", "certbot", certbot_dir)  # the good one first
    assert rc == 0, out
    before = store_state(store)

    for force in ([], ["--force"]):
        rc, out = acmectl(store, "import", "certbot", *force, bad,
                          "out.test", "mismatch.test", "garbage.test")
        assert rc == 1, out
        lines = out.splitlines()

        def line(source):
            found = [x for x in lines if f"(live/{source})" in x]
            assert len(found) == 1 and "skipped" in found[0], (source, out)
            return found[0]

        assert "live/out.test/privkey.pem is a link to" in line("out.test")
        assert "leads out of" in line("out.test")
        assert "does not match the private key" in line("mismatch.test")
        assert "not a PEM certificate chain" in line("garbage.test")
        assert "ACME03301" not in out, out
        assert store_state(store) == before, out


@pytest.fixture(scope="module")
def short_pebble(workdir):
    pb = acmetest.Pebble(os.path.join(workdir, "pebble-import-short"), validity=90)
    yield pb
    pb.stop()


@pytest.mark.slow(60)
def test_imported_certificate_renews_when_due_with_the_imported_account(workdir, short_pebble,
                                                                       httpd_factory):
    acmetest.require_root("certbot's standalone server and a server with User www-data")
    le = os.path.join(workdir, "letsencrypt-short")
    certbot_certonly(short_pebble, le, ["due.test"])
    serial = leaf_serial(os.path.join(le, "live", "due.test", "fullchain.pem"))
    h = httpd_factory(ca=short_pebble)
    make_store(h.store)
    rc, out = acmectl(h.store, "import", "certbot", le)
    assert rc == 0, out
    serve_conf(h, "ACMERenewWindow 50%\nACMEDomain due.test\n", ["due.test"])
    mark = assert_served_without_ca(h, short_pebble, "due.test", [serial])
    # Half of the 90 s lifetime left (45 s after issuance): renewed, with the imported account.
    assert h.wait_log("ACME01054", timeout=90), h.log_text()[-3000:]
    made = short_pebble.requests()[mark:]
    assert ORDER in made and ACCOUNT not in made, made
    assert "the certificate is due for renewal" in h.log_text()
