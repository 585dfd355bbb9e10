"""What the server's User can plant in the store, seen from outside. The parent runs as root and
reads the User's folders (staging/, jobs/, accounts/): a link planted there never makes it serve
or copy another service's key. A store whose root-only folders (the top, archive/, domains/,
fallback/) are not root's is refused before the server starts, and the message names each folder
and the command that fixes it."""
import datetime
import os
import pwd
import re
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import acmetest
from test_httpd import ACCOUNT, wait_real_cert


def www_data():
    return pwd.getpwnam("www-data")


def another_service_set(dirpath, names):
    """A key and a certificate for names, valid now, as another service on the machine keeps
    them: root's files in a root-only folder. Returns the certificate."""
    os.makedirs(dirpath, mode=0o700)
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    with open(os.path.join(dirpath, "privkey.pem"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(os.path.join(dirpath, "privkey.pem"), 0o600)
    with open(os.path.join(dirpath, "fullchain.pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert


def archived_serials(h, name):
    """Serial numbers of every certificate root copied into archive/<name>/."""
    archive = os.path.join(h.store, "archive", name)
    serials = set()
    for gen in os.listdir(archive) if os.path.isdir(archive) else []:
        chain = os.path.join(archive, gen, "fullchain.pem")
        if os.path.isfile(chain):
            with open(chain, "rb") as f:
                serials.add(acmetest.split_pem_chain(f.read())[0].serial_number)
    return serials


def test_staged_link_to_another_services_key_is_not_served(httpd_factory):
    """staging/<name> planted as a link to another service's folder holding a key and a
    certificate for the names: the parent refuses it at promotion, says why, serves the temporary
    certificate and then one from the CA, and never copies the planted set."""
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain evil.test\n" + h.ssl_vhost("evil.test"))
    elsewhere = os.path.join(h.root, "other-service")
    planted = another_service_set(elsewhere, ["evil.test"])
    staging = os.path.join(h.store, "staging")
    os.makedirs(staging, mode=0o700)
    link = os.path.join(staging, "evil.test")
    os.symlink(elsewhere, link)
    if os.geteuid() == 0:
        # As a CGI or PHP script running as the User would have made it, in its own folder.
        os.chown(staging, www_data().pw_uid, www_data().pw_gid)
        os.lchown(link, www_data().pw_uid, www_data().pw_gid)
    h.allowed_errors.append("ACME01021: evil.test")
    h.start()

    assert h.wait_log("ACME01021: evil.test", timeout=10), h.log_text()[-3000:]
    line = next(x for x in h.log_text().splitlines() if "ACME01021: evil.test" in x)
    assert "staging/evil.test is a symbolic link, which the store never follows" in line, line
    assert "ACME01020: evil.test" not in h.log_text()
    served = acmetest.tls_peer_cert(h.https_port, "evil.test")
    assert served.serial_number != planted.serial_number
    assert planted.serial_number not in archived_serials(h, "evil.test")

    # The server goes on as if nothing had been staged: the CA's certificate follows.
    cert = wait_real_cert(h, "evil.test")
    assert cert.serial_number != planted.serial_number
    assert planted.serial_number not in archived_serials(h, "evil.test")
    assert sorted(os.listdir(elsewhere)) == ["fullchain.pem", "privkey.pem"]


def make_user_archive(h):
    os.makedirs(os.path.join(h.store, "archive"))
    os.chown(os.path.join(h.store, "archive"), www_data().pw_uid, www_data().pw_gid)
    return [f"{h.store}/archive belongs to www-data (uid {www_data().pw_uid})",
            f"chown -R root:root {h.store}/archive"]


def make_archive_link(h):
    target = os.path.join(h.root, "etc")
    os.makedirs(target)
    os.makedirs(h.store)
    os.symlink(target, os.path.join(h.store, "archive"))
    return [f"{h.store}/archive is a symbolic link",
            f"mv {h.store}/archive {h.store}/archive.moved"]


def make_unprivileged_store(h):
    """The store as a run of the server without root leaves it: everything the User's."""
    for d in ("accounts", "staging", "jobs", "domains", "archive"):
        os.makedirs(os.path.join(h.store, d), mode=0o700)
    for root, dirs, _ in os.walk(h.store):
        for d in dirs + [""]:
            os.chown(os.path.join(root, d), www_data().pw_uid, www_data().pw_gid)
    return [f"{h.store} belongs to www-data", f"{h.store}/archive belongs to www-data",
            f"{h.store}/domains belongs to www-data", f"chown root:root {h.store} && ",
            f"chown -R root:root {h.store}/domains"]


@pytest.mark.parametrize("make", [make_user_archive, make_archive_link, make_unprivileged_store],
                         ids=["archive-of-the-user", "archive-a-link", "store-made-unprivileged"])
def test_store_not_roots_is_refused_with_the_fix(httpd_factory, make):
    """configtest and start fail with a message that names each folder and the command that
    fixes it; nothing is made through the folders; after the command the server starts and gets
    its certificate."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the parent must run as root with User www-data")
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain own.test\n" + h.ssl_vhost("own.test"))
    expected = make(h)
    h.allowed_errors += ["ACME02100", "ACME02101"]

    r = h.configtest()
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "ACME02100: ACMEStoreDir " + h.store in out, out
    for text in expected:
        assert text in out, out
    with pytest.raises(RuntimeError) as failed:
        h.start()
    assert "ACME02100" in str(failed.value) and expected[-1] in str(failed.value)
    assert not h.processes()
    if os.path.isdir(os.path.join(h.root, "etc")):
        assert os.listdir(os.path.join(h.root, "etc")) == []

    # The command the message gives is the fix.
    fix = re.search(r"; to fix: (.*); the server does not start", out).group(1)
    subprocess.run(["sh", "-c", fix], check=True)
    h.start()
    wait_real_cert(h, "own.test")
