"""Renewal against the real pebble issuing short-lived certificates: the old certificate is
served until the new one is active, no TLS handshake fails on the way."""
import os
import threading
import time

import pytest

import acmetest

VALIDITY = 100  # seconds; renewal at half, activation within the one-a-minute restart limit


@pytest.fixture(scope="module")
def short_pebble(workdir):
    pb = acmetest.Pebble(os.path.join(workdir, "pebble-short"), validity=VALIDITY)
    yield pb
    pb.stop()


@pytest.mark.slow(160)
def test_renewal_is_invisible_to_clients(workdir, short_pebble, request):
    root = os.path.join(acmetest.public_dir(workdir, "httpd"), "renewal")
    h = acmetest.Httpd(root, short_pebble)
    h.write_conf("ACMEContactEmail admin@r.test\nACMEAgreement accepted\n"
                 "ACMERenewWindow 50%\nACMEDomain r.test\n" + h.ssl_vhost("r.test"))
    h.start()
    try:
        def real_cert():
            c = acmetest.tls_peer_cert(h.https_port, "r.test")
            return c if c.issuer != c.subject else None

        first = acmetest.wait_until(real_cert, 30, lambda: h.log_text()[-3000:])

        seen = []       # (time, serial) of every handshake
        failures = []
        stop = threading.Event()

        def client_loop():
            while not stop.is_set():
                try:
                    cert = acmetest.tls_peer_cert(h.https_port, "r.test", timeout=5)
                    seen.append((time.monotonic(), cert.serial_number))
                except Exception as e:  # noqa: BLE001 - every failure counts
                    failures.append(repr(e))
                time.sleep(0.02)

        t = threading.Thread(target=client_loop)
        t.start()
        try:
            # Renewal starts at half the lifetime; the restart waits for the one-a-minute limit.
            # Two renewals: three certificates activated in all.
            assert h.wait_log("ACME01020: r.test", count=3, timeout=VALIDITY + 60), \
                h.log_text()[-4000:]
            # Until the clients get the third certificate.
            acmetest.wait_until(lambda: len({s for _, s in list(seen)}) >= 3, 30,
                                lambda: f"a third certificate served; seen {len(seen)} "
                                        f"handshakes, failures {failures[:3]}")
        finally:
            stop.set()
            t.join()
        log = h.log_text()
        assert "the certificate is due for renewal: renewing" in log
        assert not failures, failures[:5]
        serials = [s for _, s in seen]
        assert serials[0] == first.serial_number
        # Each certificate is served for one stretch: once the next one is served, an older one
        # never comes back.
        stretches = [serials[0]]
        for s in serials[1:]:
            if s != stretches[-1]:
                assert s not in stretches, "an older certificate came back"
                stretches.append(s)
        assert len(stretches) == 3, stretches
        assert len(seen) > 100
        assert not h.unexpected_errors()
    finally:
        h.stop()


@pytest.mark.slow(120)
def test_renewals_share_one_restart(workdir, short_pebble):
    """Scheduled renewals of served certificates wait for each other (docs/apache.md,
    "Activation"): each staged renewal says until when it waits at most (ACME01067), no
    restart comes before that time, and one graceful restart activates both renewals."""
    import re
    root = os.path.join(acmetest.public_dir(workdir, "httpd"), "renewal-batch")
    h = acmetest.Httpd(root, short_pebble)
    names = ["b1.test", "b2.test"]
    h.write_conf("ACMEContactEmail admin@b.test\nACMEAgreement accepted\n"
                 "ACMERenewWindow 50%\n" + "".join(f"ACMEDomain {n}\n" for n in names) +
                 "".join(h.ssl_vhost(n) for n in names))
    h.start()
    try:
        # First certificates: due at once, one restart activates both.
        for n in names:
            assert h.wait_log(f"ACME01020: {n}", timeout=30), h.log_text()[-3000:]
        # The renewals, at half the lifetime (the spread puts them up to 2.5 s apart).
        for n in names:
            assert h.wait_log(f"ACME01020: {n}", count=2, timeout=VALIDITY + 30), \
                h.log_text()[-4000:]
        lines = h.log_text().splitlines()
        waits = [line for line in lines if "ACME01067" in line]
        assert {n for n in names if any(f"ACME01067: {n}:" in w for w in waits)} == set(names), \
            waits
        first = waits[0]
        announced = int(re.search(r"\((\d+) s from now", first).group(1))
        assert 3 <= announced <= 6, first  # a tenth of the ~50 s left
        restarts = [acmetest._log_time(line) for line in lines if "AH00493" in line]
        assert len(restarts) == 2, restarts  # the first certificates', then the renewals'
        # The restart came when the first renewal was due, not when it was staged.
        assert restarts[1] >= acmetest._log_time(first) + announced - 1, (first, restarts)
        activated = [acmetest._log_time(line) for line in lines if "ACME01020" in line]
        assert len(activated) == 4 and all(t > restarts[1] for t in activated[2:]), lines
        assert not h.unexpected_errors()
    finally:
        h.stop()
