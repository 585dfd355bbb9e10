"""ACMEPreferredChain against pebble offering alternate chains (PEBBLE_ALTERNATE_ROOTS): one
intermediate cross-signed by three roots. The chain a TLS client gets from Apache ends at the
root named; a name no chain ends at, or alternates that fail to download, leave the default
chain, logged, and the certificate is issued all the same; a changed preference brings a new
certificate with the chain asked for, once."""
import os
import re
import subprocess

import pytest

import acmetest
from chaosproxy import ChaosProxy
from cryptography.x509.oid import NameOID
from test_httpd import ACCOUNT, wait_real_cert

ALTERNATES = 2


@pytest.fixture(scope="module")
def alt_pebble(workdir):
    pb = acmetest.Pebble(os.path.join(workdir, "pebble-alt"), alternate_roots=ALTERNATES)
    yield pb
    pb.stop()


def served_chain(h, name, tmp_path):
    """The certificates the server sends for name (openssl s_client -showcerts), leaf first."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{h.https_port}",
                        "-servername", name, "-showcerts"], input="", capture_output=True,
                       text=True, timeout=20)
    path = tmp_path / f"served-{name}.pem"
    blocks, inside = [], False
    for line in r.stdout.splitlines():
        if line.startswith("-----BEGIN CERTIFICATE-----"):
            inside = True
            blocks.append([])
        if inside:
            blocks[-1].append(line)
        if line.startswith("-----END CERTIFICATE-----"):
            inside = False
    path.write_text("\n".join("\n".join(b) for b in blocks) + "\n")
    return path, acmetest.split_pem_chain(path.read_bytes())


def top_issuer(chain):
    return chain[-1].issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def assert_served_ends_at(h, name, pb, k, tmp_path):
    """The chain a client gets ends at root k of pb, and verifies against that root alone."""
    path, chain = served_chain(h, name, tmp_path)
    assert top_issuer(chain) == pb.root_name(k), [c.subject for c in chain]
    ok, out = acmetest.verify_chain(str(path), pb.root_pem(k), str(tmp_path))
    assert ok, out
    return chain


def conf(h, pb, body, ca_url=None):
    h.write_conf(f"ACMECertificateAuthority {ca_url or pb.directory}\n"
                 f"ACMECACertificateFile {pb.ca_file}\n" + ACCOUNT + body, ca=False)


def test_preferred_chain_is_served(httpd_factory, alt_pebble, tmp_path):
    names = [alt_pebble.root_name(k) for k in range(ALTERNATES + 1)]
    assert len(set(names)) == ALTERNATES + 1, names
    h = httpd_factory(ca=alt_pebble)
    before = alt_pebble.request_count()
    conf(h, alt_pebble, f'ACMEPreferredChain "{names[2]}"\nACMEDomain pc.test\n' +
         h.ssl_vhost("pc.test"))
    h.start()
    wait_real_cert(h, "pc.test")
    assert_served_ends_at(h, "pc.test", alt_pebble, 2, tmp_path)
    log = h.log_text()
    line = [x for x in log.splitlines() if "ACME02900: pc.test" in x]
    assert line, log[-3000:]
    assert f'ends at "{names[2]}" as ACMEPreferredChain asks' in line[0], line[0]
    assert f'"{names[0]}" (default), "{names[1]}", "{names[2]}"' in line[0], line[0]
    # Each alternate downloaded once (acme:debug logs every request; a badNonce retry would
    # show as a second request to the same URL in pebble's log, which names no URLs).
    fetched = re.findall(r"POST (https://\S+/alternate/\d+) -> 200", log)
    assert len(fetched) == ALTERNATES == len(set(fetched)), fetched
    requests = alt_pebble.requests()[before:]
    downloads = [i for i, r in enumerate(requests) if r == "POST /certZ/"]
    print(f"\nCA requests for the certificate, {ALTERNATES} alternates downloaded: "
          f"{downloads[-1] + 1} ({len(downloads)} certificate downloads)")


def test_no_chain_ends_there_keeps_the_default(httpd_factory, alt_pebble, tmp_path):
    names = [alt_pebble.root_name(k) for k in range(ALTERNATES + 1)]
    h = httpd_factory(ca=alt_pebble)
    conf(h, alt_pebble, 'ACMEPreferredChain "No Such Root X9"\nACMEDomain nc.test\n' +
         h.ssl_vhost("nc.test"))
    h.start()
    wait_real_cert(h, "nc.test")
    assert_served_ends_at(h, "nc.test", alt_pebble, 0, tmp_path)
    line = [x for x in h.log_text().splitlines() if "ACME02901: nc.test" in x]
    assert len(line) == 1, h.log_text()[-3000:]
    assert ":warn]" in line[0]
    assert '"No Such Root X9"' in line[0] and "; keeping the default chain" in line[0], line[0]
    assert all(f'"{n}"' in line[0] for n in names), line[0]


def test_ca_without_alternates_keeps_the_default(httpd_factory, pebble, tmp_path):
    """A CA that offers no alternate chain (the session's pebble): the default, said so."""
    h = httpd_factory()
    conf(h, pebble, 'ACMEPreferredChain "Some Other Root"\nACMEDomain na.test\n' +
         h.ssl_vhost("na.test"))
    h.start()
    wait_real_cert(h, "na.test")
    assert_served_ends_at(h, "na.test", pebble, 0, tmp_path)
    line = [x for x in h.log_text().splitlines() if "ACME02901: na.test" in x]
    assert len(line) == 1, h.log_text()[-3000:]
    assert f'chains offered: "{pebble.root_name(0)}" (default); keeping the default chain' \
        in line[0], line[0]


def test_alternates_failing_to_download_keep_the_default(httpd_factory, alt_pebble, tmp_path):
    """The CA fails every alternate download (500): each is logged and left out, the default
    chain is kept, and the certificate is issued and served."""
    proxy = ChaosProxy(alt_pebble)
    proxy.mode, proxy.only_path = "500", "/alternate/"
    try:
        h = httpd_factory(ca=alt_pebble)
        wanted = alt_pebble.root_name(1)
        conf(h, alt_pebble, f'ACMEPreferredChain "{wanted}"\nACMEDomain af.test\n' +
             h.ssl_vhost("af.test"), ca_url=proxy.directory)
        h.start()
        wait_real_cert(h, "af.test")
        assert_served_ends_at(h, "af.test", alt_pebble, 0, tmp_path)
        log = h.log_text()
        failed = [x for x in log.splitlines() if "ACME00190: af.test" in x]
        assert len(failed) == ALTERNATES, log[-3000:]
        assert "serverInternal (HTTP 500): injected by the test proxy" in failed[0], failed[0]
        assert "the chain kept is chosen among the others" in failed[0], failed[0]
        line = [x for x in log.splitlines() if "ACME02901: af.test" in x][0]
        assert f'chains offered: "{alt_pebble.root_name(0)}" (default); keeping the default' \
            in line, line
        assert "ACME01055" not in log, "the issuance did not fail"
    finally:
        proxy.stop()


def test_changed_preference_brings_a_new_certificate_once(httpd_factory, alt_pebble,
                                                          tmp_path):
    """A certificate whose chain ends elsewhere than a new ACMEPreferredChain says is replaced
    by one with the chain asked for (the old one served meanwhile). A preference no chain
    meets gives one new certificate with the default chain, and no order after that."""
    names = [alt_pebble.root_name(k) for k in range(ALTERNATES + 1)]
    h = httpd_factory(ca=alt_pebble)
    vhost = h.ssl_vhost("cp.test")
    conf(h, alt_pebble, "ACMEDomain cp.test\n" + vhost)
    h.start()
    first = wait_real_cert(h, "cp.test")
    assert_served_ends_at(h, "cp.test", alt_pebble, 0, tmp_path)
    h.stop()

    conf(h, alt_pebble, f'ACMEPreferredChain "{names[1]}"\nACMEDomain cp.test\n' + vhost)
    h.start()
    assert h.wait_log(f'ACME01022: cp.test: the current certificate has a chain that ends at '
                      f'"{names[0]}", not at "{names[1]}" as ACMEPreferredChain asks'), \
        h.log_text()[-3000:]
    second = wait_real_cert_other(h, "cp.test", first.serial_number)
    assert_served_ends_at(h, "cp.test", alt_pebble, 1, tmp_path)
    h.stop()

    # The same preference again: nothing to do.
    h.start()
    h.wait_driver()
    assert "ACME01022" not in h.log_text().split("AH00094")[-1]
    h.stop()

    # A preference no chain meets: one new certificate (default chain), then no order more.
    conf(h, alt_pebble, 'ACMEPreferredChain "No Such Root X9"\nACMEDomain cp.test\n' + vhost)
    h.start()
    third = wait_real_cert_other(h, "cp.test", second.serial_number)
    assert_served_ends_at(h, "cp.test", alt_pebble, 0, tmp_path)
    h.stop()
    h.start()
    h.wait_driver()
    last_start = h.log_text().split("AH00094")[-1]
    assert "ACME01062: cp.test" not in last_start and "ACME01022" not in last_start, last_start
    assert acmetest.tls_peer_cert(h.https_port, "cp.test").serial_number == third.serial_number


def test_preference_per_certificate(httpd_factory, alt_pebble, tmp_path):
    """ACMEPreferredChain in an <ACMEDomain> section applies to that certificate only; the
    global one to the others."""
    names = [alt_pebble.root_name(k) for k in range(ALTERNATES + 1)]
    h = httpd_factory(ca=alt_pebble)
    conf(h, alt_pebble, f'ACMEPreferredChain "{names[1]}"\n'
                        f'<ACMEDomain own.test>\n    ACMEPreferredChain "{names[2]}"\n'
                        '</ACMEDomain>\nACMEDomain global.test\n' +
         h.ssl_vhost("own.test") + h.ssl_vhost("global.test"))
    h.start()
    wait_real_cert(h, "own.test")
    wait_real_cert(h, "global.test")
    assert_served_ends_at(h, "own.test", alt_pebble, 2, tmp_path)
    assert_served_ends_at(h, "global.test", alt_pebble, 1, tmp_path)


def wait_real_cert_other(h, name, old_serial, timeout=30.0):
    """Waits until the vhost serves a certificate from the CA other than old_serial."""
    def other():
        try:
            c = acmetest.tls_peer_cert(h.https_port, name)
        except OSError:
            return None
        return c if c.issuer != c.subject and c.serial_number != old_serial else None
    return acmetest.wait_until(other, timeout, lambda: f"{name}: a certificate other than "
                                                       f"{old_serial:x}\n{h.log_text()[-3000:]}")
