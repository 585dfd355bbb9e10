"""CA requests per certificate through the module in the real Debian Apache against the real
pebble (no nonce rejection, no reuse of valid authorizations, validating http-01 for real),
counted in pebble's log (one line per request): the protocol minimum for a first certificate,
everything after the restart included; a renewal with a known account; and nothing at all from
a server generation with nothing to do (the CA's directory is kept in the store,
jobs/<ca-id>.directory)."""
import os

import pytest

import acmetest
from connectproxy import ConnectProxy
from test_httpd import ACCOUNT, wait_real_cert

FIRST = ["GET /dir", "HEAD /nonce-plz", "POST /sign-me-up", "POST /order-plz", "POST /authZ/",
         "POST /chalZ/", "POST /my-order/", "POST /finalize-order/", "POST /my-order/",
         "POST /certZ/"]
RENEWAL = FIRST[1:2] + FIRST[3:]  # no directory, no account
# pebble 2.4 makes a new authorization when rand.Intn(100) > PEBBLE_AUTHZREUSE: even at 0 it
# reuses the valid one once in a hundred orders. The order is then ready at once and the
# module goes straight to finalize (nonce, order, finalize, poll, certificate).
RENEWAL_REUSED = RENEWAL[:2] + RENEWAL[5:]
QUIET = {"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}


@pytest.fixture(scope="module")
def quiet_pebble(workdir):
    pb = acmetest.Pebble(os.path.join(workdir, "pebble-quiet"), env_extra=QUIET)
    yield pb
    pb.stop()


@pytest.fixture(scope="module")
def short_quiet_pebble(workdir):
    pb = acmetest.Pebble(os.path.join(workdir, "pebble-quiet-short"), validity=30,
                         env_extra=QUIET)
    yield pb
    pb.stop()


def lines_with(h, needle):
    return [li.rstrip() for li in h.log_text().splitlines() if needle in li]


def poll_runs(requests):
    """The length of each run of order polls."""
    runs, n = [], 0
    for r in requests + [None]:
        if r == "POST /my-order/":
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


def collapsed(requests):
    """The requests with each run of order polls taken as one: how many polls a CA needs
    depends on how fast it validates and signs (a loaded machine), not on the client."""
    out = []
    for r in requests:
        if not (r == "POST /my-order/" and out and out[-1] == r):
            out.append(r)
    return out


def test_first_certificate_ten_requests_and_none_after(httpd_factory, quiet_pebble):
    """One name: ten requests from start to the certificate served after the automatic
    restart, and not one from the generation after it, nor from the one after a further
    graceful restart (each has nothing to do: no directory fetched, no renewal information
    asked of a CA whose kept directory offers none)."""
    h = httpd_factory(ca=quiet_pebble)
    h.write_conf(ACCOUNT + "ACMEDomain one.req.test\n" + h.ssl_vhost("one.req.test"))
    mark = quiet_pebble.request_count()
    h.start()
    wait_real_cert(h, "one.req.test")
    # The generation serving it has looked at the certificate's renewal information: with the
    # directory from the store, without a request.
    assert h.wait_log("ACME03904: one.req.test", timeout=30), h.log_text()[-3000:]
    assert "ACME03901" in h.log_text()
    h.wait_driver()
    made = quiet_pebble.requests()[mark:]
    print(f"\nfirst certificate, one name, until the next generation is idle: {len(made)} "
          f"requests: {made}")
    assert collapsed(made) == FIRST, made
    # pebble on loopback is done within 2 s even on a loaded machine: 5 polls at most (15 ms,
    # then 3x longer each time); usually 1.
    assert all(n <= 5 for n in poll_runs(made)), made
    store_dir = os.path.join(h.store, "jobs",
                             f"{acmetest.LOOPBACK}_{quiet_pebble.port}_dir.directory")
    assert os.path.exists(store_dir), os.listdir(os.path.join(h.store, "jobs"))

    # A graceful restart with nothing to do: its generation asks the CA nothing.
    mark = quiet_pebble.request_count()
    h.graceful()
    assert h.wait_log("ACME03904: one.req.test", count=2, timeout=30), h.log_text()[-3000:]
    h.wait_driver()
    assert quiet_pebble.requests()[mark:] == []


@pytest.mark.slow(60)
def test_renewal_with_known_account_eight_requests(httpd_factory, short_quiet_pebble):
    """The renewal of a 30-second certificate by the next generation: nonce, order,
    authorization, challenge, poll, finalize, poll, certificate; no directory, no account."""
    h = httpd_factory(ca=short_quiet_pebble)
    h.write_conf(ACCOUNT + "ACMERenewWindow 50%\nACMEDomain renew.req.test\n"
                 + h.ssl_vhost("renew.req.test"))
    h.start()
    assert h.wait_log("ACME01054: renew.req.test", timeout=30), h.log_text()[-3000:]
    mark = short_quiet_pebble.request_count()
    assert h.wait_log("ACME01054: renew.req.test", count=2, timeout=45), h.log_text()[-3000:]
    made = short_quiet_pebble.requests()[mark:]
    print(f"\nrenewal, one name, known account: {len(made)} requests: {made}")
    orders = lines_with(h, "ACME00026: renew.req.test: order ")
    assert len(orders) >= 2, orders
    # The module logs the state of the order as the CA made it (ACME00026).
    assert collapsed(made) == (RENEWAL_REUSED if orders[1].endswith(" is ready") else RENEWAL), \
        (made, orders)
    assert all(n <= 5 for n in poll_runs(made)), made


def test_ten_certificates_at_most_one_connection_per_worker(httpd_factory, quiet_pebble):
    """Ten certificates in one start, every request to the CA through a CONNECT proxy that
    counts connections (each one TCP connection and one TLS handshake): at most one per worker
    running at once (8), where each certificate used to connect on its own (10, and one more
    for the next generation); a worker that starts after another ended continues on the
    connection it left open."""
    names = [f"c{i}.req.test" for i in range(10)]
    proxy = ConnectProxy()
    try:
        h = httpd_factory(ca=quiet_pebble)
        h.write_conf(ACCOUNT + f"ACMEHttpProxy http://127.0.0.1:{proxy.port}\n"
                     + "".join(f"ACMEDomain {n}\n" for n in names)
                     + "".join(h.ssl_vhost(n) for n in names))
        h.start()
        for n in names:
            wait_real_cert(h, n)
        assert h.wait_log("ACME03904:", timeout=30), h.log_text()[-3000:]
        h.wait_driver()
        connects = proxy.targets()
        print(f"\nten certificates: {len(connects)} connection(s) to the CA")
        assert set(connects) == {f"{acmetest.LOOPBACK}:{quiet_pebble.port}"}, connects
        assert 1 <= len(connects) <= 8, connects
        assert "worker(s) continued on a connection a finished one left open" in h.log_text()
    finally:
        proxy.stop()
