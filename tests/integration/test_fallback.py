"""The temporary (fallback) certificate a domain serves until its first one arrives: kept across
restarts while its files are unchanged (the parent does not decode an unchanged key again,
mod_acme/acme_setcache.c), checked again as soon as they change, and made anew when a crash left
it torn or empty (it is written without fsync)."""
import os
import re

import pytest

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import acmetest
from test_httpd import ACCOUNT, issuer_is_self

NAMES = ["fb.test", "www.fb.test"]


def start_without_ca(h):
    """A CA that is never reachable: the fallback is what the server serves all along."""
    h.write_conf(f"ACMECertificateAuthority https://127.0.0.1:{acmetest.free_port()}/dir\n"
                 f"ACMECACertificateFile {h.pebble.ca_file}\n" + ACCOUNT +
                 f"ACMEDomain {' '.join(NAMES)}\n" + h.ssl_vhost(NAMES[0], NAMES[1:]), ca=False)
    h.allowed_errors.append("ACME01055")
    h.start()


def fallback_file(h, name):
    return os.path.join(h.store, "fallback", NAMES[0], name)


def served_fallback(h):
    """The certificate served for every name: self-signed, for the domain's names, and the one
    in the store next to its own key. Returns its fingerprint."""
    prints = set()
    for name in NAMES:
        cert = acmetest.tls_peer_cert(h.https_port, name)
        assert issuer_is_self(cert), cert.subject
        assert sorted(acmetest.san_names(cert)) == sorted(NAMES)
        prints.add(cert.fingerprint(hashes.SHA256()))
    assert len(prints) == 1
    with open(fallback_file(h, "privkey.pem"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(serialization.Encoding.DER, spki) == \
        cert.public_key().public_bytes(serialization.Encoding.DER, spki)
    return prints.pop()


def unchanged_count(h):
    """How many lookups of the parent found store files unchanged, as its last pass logged."""
    lines = [l for l in h.log_text().splitlines() if "ACME01034" in l]
    assert lines, h.log_text()[-2000:]
    return int(re.search(r"; (\d+) found unchanged", lines[-1]).group(1))


def graceful_and_wait(h):
    passes = h.log_text().count("ACME01034")
    h.graceful()
    assert h.wait_log("ACME01034", count=passes + 1), h.log_text()[-3000:]
    acmetest.wait_until(lambda: acmetest.tls_peer_cert(h.https_port, NAMES[0]) is not None, 10,
                        "the new generation answers")
    h.settle()


def test_unchanged_fallback_is_kept_without_decoding_and_a_changed_one_is_checked(httpd_factory):
    h = httpd_factory()
    start_without_ca(h)
    first = served_fallback(h)
    # The second pass of the start found what the first wrote.
    hits = unchanged_count(h)
    assert hits >= 1
    for _ in range(2):
        graceful_and_wait(h)
        assert served_fallback(h) == first
        assert unchanged_count(h) == hits + 1, "the unchanged key was decoded again"
        hits += 1

    # Another key written over the fallback's, in place (same inode): the next pass sees the
    # change, finds the pair broken and makes a new fallback; mod_ssl never gets a mismatch.
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    ino = os.stat(fallback_file(h, "privkey.pem")).st_ino
    with open(fallback_file(h, "privkey.pem"), "wb") as f:
        f.write(other)
    assert os.stat(fallback_file(h, "privkey.pem")).st_ino == ino
    graceful_and_wait(h)
    assert "ACME01035: fb.test" in h.log_text()
    assert "privkey.pem is not the certificate's key; a new one is made" in h.log_text()
    second = served_fallback(h)
    assert second != first
    assert unchanged_count(h) == hits
    assert h.pid() and not h.unexpected_errors(h.allowed_errors)


@pytest.mark.parametrize("name,damage", [
    ("privkey.pem", "empty"), ("privkey.pem", "half"),
    ("fullchain.pem", "empty"), ("fullchain.pem", "half"), ("fullchain.pem", "zeros"),
])
def test_fallback_torn_by_a_crash_is_made_anew_at_start(httpd_factory, name, damage):
    """What a crash of the system can leave of a file written without fsync: nothing, part of
    it, or blocks of zeros. The next start sees it, says so, and serves a new fallback."""
    h = httpd_factory()
    start_without_ca(h)
    first = served_fallback(h)
    h.stop()
    path = fallback_file(h, name)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write({"empty": b"", "half": data[:len(data) // 2],
                 "zeros": b"\0" * len(data)}[damage])
    h.start()
    second = served_fallback(h)
    assert second != first
    assert f"ACME01035: fb.test: the temporary certificate in {os.path.dirname(path)} is not " \
        f"kept: {name}" in h.log_text()
