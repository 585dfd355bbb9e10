"""kill -9 at random points of issuance and activation, of the whole server or of its
children: after it, the store is consistent, the server starts, serves a whole set (never a key
of one and a certificate of another), and issuance completes."""
import os
import random
import signal
import time

import pytest
from cryptography.hazmat.primitives import serialization

import acmetest
from test_httpd import ACCOUNT, wait_real_cert

NAMES = ["k1.test", "k2.test"]


def store_is_consistent(h):
    """Every active set is whole: its key is the key of its certificate."""
    for name in NAMES:
        link = os.path.join(h.store, "domains", name)
        if not os.path.lexists(link):
            continue
        assert os.path.islink(link), f"{link} is not a symlink"
        target = os.readlink(link)
        assert target.startswith(f"../archive/{name}/"), target
        with open(os.path.join(link, "privkey.pem"), "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        chain = acmetest.split_pem_chain(open(os.path.join(link, "fullchain.pem"), "rb").read())
        pub = lambda k: k.public_bytes(serialization.Encoding.DER,  # noqa: E731
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
        assert pub(key.public_key()) == pub(chain[0].public_key()), f"{name}: key mismatch"


def served_matches_store(h, name):
    link = os.path.join(h.store, "domains", name)
    served = acmetest.tls_peer_cert(h.https_port, name)
    if served.issuer == served.subject:
        return True  # the fallback, before the first set is active
    chain = acmetest.split_pem_chain(open(os.path.join(link, "fullchain.pem"), "rb").read())
    # The served certificate is one of the sets ever activated.
    archive = os.path.join(h.store, "archive", name)
    serials = set()
    for gen in os.listdir(archive):
        p = os.path.join(archive, gen, "fullchain.pem")
        if os.path.exists(p):
            serials.add(acmetest.split_pem_chain(open(p, "rb").read())[0].serial_number)
    return served.serial_number in serials and chain


@pytest.mark.parametrize("seed", range(12))
def test_kill_9_everything_at_random_points(httpd_factory, seed):
    rnd = random.Random(seed)
    h = httpd_factory()
    h.write_conf(ACCOUNT + "".join(f"ACMEDomain {n}\n" for n in NAMES) +
                 "".join(h.ssl_vhost(n) for n in NAMES))
    h.allowed_errors += ["AH00046"]
    h.start()
    time.sleep(rnd.uniform(0.0, 1.0))
    # Again until none is left: the parent may fork a child between our listing and its kill.
    deadline = time.monotonic() + 10
    while h.processes() and time.monotonic() < deadline:
        for pid in h.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    assert not h.processes()
    store_is_consistent(h)
    h.start()
    for n in NAMES:
        wait_real_cert(h, n, timeout=40)
        assert served_matches_store(h, n)
    store_is_consistent(h)


@pytest.mark.parametrize("seed", range(3))
def test_kill_9_children_during_issuance(httpd_factory, seed):
    """The parent lives on and starts new children; mod_watchdog elects a new driver, which
    resumes the orders from the job files."""
    rnd = random.Random(100 + seed)
    h = httpd_factory()
    h.write_conf(ACCOUNT + "".join(f"ACMEDomain {n}\n" for n in NAMES) +
                 "".join(h.ssl_vhost(n) for n in NAMES))
    h.allowed_errors += ["AH00046"]
    h.start()
    time.sleep(rnd.uniform(0.0, 0.6))
    for pid in h.children():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for n in NAMES:
        wait_real_cert(h, n, timeout=60)
    store_is_consistent(h)
