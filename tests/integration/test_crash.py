"""kill -9 of the whole server or of its children while an order is in flight or a new set is
being activated: after it, the store is consistent, the server starts, serves a whole set (never
a key of one and a certificate of another), the order in flight is taken up again, and issuance
completes.

The kill comes at a known point, then after a random delay: while the driver waits for pebble's
answer to a chosen request (a ChaosProxy in front of pebble holds it), so that an order is in
flight (the job file names it); or after a set is staged and the restart asked for, while the
parent restarts and promotes."""
import json
import os
import random
import signal
import time

import pytest
from cryptography.hazmat.primitives import serialization

import acmetest
from chaosproxy import ChaosProxy
from test_httpd import ACCOUNT, wait_real_cert

NAMES = ["k1.test", "k2.test"]
# pebble's paths for: an authorization, answering its challenge, polling the order, finalizing
# it, downloading the certificate; and the restart that activates the staged sets.
POINTS = ["/authZ/", "/chalZ/", "/my-order/", "/finalize-order/", "/certZ/", "activation"]


@pytest.fixture
def proxy(pebble):
    p = ChaosProxy(pebble)
    yield p
    p.stop()


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
    """The served certificate is the fallback or one of the sets ever activated for name."""
    link = os.path.join(h.store, "domains", name)
    served = acmetest.tls_peer_cert(h.https_port, name)
    if served.issuer == served.subject:
        return True  # the fallback, before the first set is active
    chain = acmetest.split_pem_chain(open(os.path.join(link, "fullchain.pem"), "rb").read())
    archive = os.path.join(h.store, "archive", name)
    serials = set()
    for gen in os.listdir(archive):
        p = os.path.join(archive, gen, "fullchain.pem")
        if os.path.exists(p):
            serials.add(acmetest.split_pem_chain(open(p, "rb").read())[0].serial_number)
    return served.serial_number in serials and chain


def served_is_active(h, name):
    """The server presents the certificate of the active set of name (domains/<name>)."""
    served = acmetest.tls_peer_cert(h.https_port, name)
    link = os.path.join(h.store, "domains", name)
    chain = acmetest.split_pem_chain(open(os.path.join(link, "fullchain.pem"), "rb").read())
    assert served.serial_number == chain[0].serial_number, name


def orders_in_flight(h):
    """{name: order URL} of the names whose job file names an order: the driver saves it when
    the CA has made the order, and clears it once the set is staged."""
    out = {}
    for name in NAMES:
        try:
            with open(os.path.join(h.store, "jobs", f"{name}.json")) as f:
                order = json.load(f).get("order")
        except (OSError, ValueError):
            continue
        if order:
            out[name] = order
    return out


def configure(h, proxy):
    h.write_conf(f"ACMECertificateAuthority {proxy.directory}\n"
                 f"ACMECACertificateFile {h.pebble.ca_file}\n" + ACCOUNT +
                 "".join(f"ACMEDomain {n}\n" for n in NAMES) +
                 "".join(h.ssl_vhost(n) for n in NAMES), ca=False)
    h.allowed_errors += ["AH00046"]


def start_until(h, proxy, point, rnd):
    """Starts the server and returns once it is at point (plus a random delay), with what is
    in flight there: {name: order URL}."""
    if point == "activation":
        h.start()
        assert h.wait_log("ACME01059", timeout=40), h.log_text()[-3000:]
        time.sleep(rnd.uniform(0.0, 1.0))  # somewhere in the restart and the promotion
        return {}
    proxy.hold(point)
    h.start()
    assert proxy.wait_held(timeout=40), h.log_text()[-3000:]
    time.sleep(rnd.uniform(0.0, 0.3))  # the other name's worker may get further meanwhile
    return orders_in_flight(h)


def assert_taken_up(h, in_flight, log_before):
    """Each order that was in flight is resumed by the next driver, or found invalid or gone
    (its validation needed the server that was killed) and replaced: never forgotten."""
    log = h.log_text()[len(log_before):]
    for name, url in in_flight.items():
        assert f"ACME00030: {name}: resuming order {url}" in log or \
            f"ACME00029: {name}: earlier order {url}" in log, f"{name}: {url} not taken up"


@pytest.mark.parametrize("seed", range(12))
def test_kill_9_everything(httpd_factory, proxy, seed):
    rnd = random.Random(seed)
    point = POINTS[seed % len(POINTS)]
    h = httpd_factory()
    configure(h, proxy)
    in_flight = start_until(h, proxy, point, rnd)
    if point == "activation":
        assert "ACME01054: k1.test" in h.log_text() or "ACME01054: k2.test" in h.log_text()
    else:
        assert in_flight, f"no order in flight at {point}\n{h.log_text()[-3000:]}"
        for name in in_flight:
            assert not os.path.exists(os.path.join(h.store, "staging", name))
    h.kill_all()
    proxy.release()
    store_is_consistent(h)
    log_before = h.log_text()
    h.start()
    for n in NAMES:
        wait_real_cert(h, n, timeout=40)
    store_is_consistent(h)
    for n in NAMES:
        served_is_active(h, n)
    assert_taken_up(h, in_flight, log_before)


@pytest.mark.parametrize("point", ["/chalZ/", "/finalize-order/", "/certZ/"])
def test_kill_9_children_during_issuance(httpd_factory, proxy, point):
    """The parent lives on and starts new children; mod_watchdog elects a new driver, which
    takes the orders up again from the job files."""
    rnd = random.Random(point)
    h = httpd_factory()
    configure(h, proxy)
    in_flight = start_until(h, proxy, point, rnd)
    assert in_flight, f"no order in flight at {point}\n{h.log_text()[-3000:]}"
    log_before = h.log_text()
    children = h.children()
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proxy.release()
    for n in NAMES:
        wait_real_cert(h, n, timeout=60)
    assert not set(children) & set(h.children())
    store_is_consistent(h)
    for n in NAMES:
        served_is_active(h, n)
    assert_taken_up(h, in_flight, log_before)
