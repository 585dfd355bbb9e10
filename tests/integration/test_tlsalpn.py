"""tls-alpn-01 (RFC 8737) in the real Debian Apache against the real pebble, which validates it on
its tlsPort (the server's TLS port): the answer comes from shared memory through mod_ssl's
ssl_answer_challenge hook; which challenge type a name gets depends on what the configuration
can answer."""
import hashlib
import json
import os
import socket
import ssl
import time

from cryptography import x509

import acmetest
from test_httpd import ACCOUNT, TOKEN, issuer_is_self, wait_real_cert

ACME_TLS = "acme-tls/1"
PROTOCOLS = "    Protocols http/1.1 acme-tls/1\n"
ACME_ID_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
THUMB = "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"  # 43 base64url characters


def acme_tls_handshake(port, server_name, timeout=5.0):
    """A validator's handshake: ALPN acme-tls/1 only, SNI server_name. Returns the protocol the
    server selected and its certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols([ACME_TLS])
    with socket.create_connection((acmetest.LOOPBACK, port), timeout=timeout) as sock:
        with ctx.wrap_socket(sock, server_hostname=server_name) as tls:
            return tls.selected_alpn_protocol(), x509.load_der_x509_certificate(
                tls.getpeercert(binary_form=True))


def acme_identifier(cert):
    """The acmeIdentifier extension: (critical, value bytes), or None."""
    for ext in cert.extensions:
        if ext.oid == ACME_ID_OID:
            return ext.critical, ext.value.value
    return None


def expected_acme_identifier(keyauth):
    return b"\x04\x20" + hashlib.sha256(keyauth.encode()).digest()


def write_job(h, domain, challenges, next_run=None):
    """A job file as the driver leaves it while answers are pending; next_run in the future
    keeps the driver away from the domain."""
    os.makedirs(os.path.join(h.store, "jobs"), exist_ok=True)
    job = {"failures": 0, "challenges": challenges}
    if next_run:
        job["next-run"] = next_run
    with open(os.path.join(h.store, "jobs", f"{domain}.json"), "w") as f:
        json.dump(job, f)


def answered_types(h):
    """The challenge types the driver told the CA to validate, from its debug lines
    ("<domain>: <type> for <name> answered"), in order."""
    out = []
    for line in h.log_text().splitlines():
        for t in ("http-01", "tls-alpn-01", "dns-01"):
            if f": {t} for " in line and line.endswith(" answered"):
                out.append(t)
    return out


def test_certificate_by_tls_alpn_with_no_http_port(httpd_factory, pebble_tls_only, tmp_path):
    """pebble's httpPort has nothing behind it: the certificate can only come by tls-alpn-01,
    validated on the server's TLS port."""
    pb = pebble_tls_only
    h = httpd_factory(ca=pb)
    h.write_conf(ACCOUNT + "ACMEChallenges tls-alpn-01\nACMEDomain alpn.test www.alpn.test\n" +
                 h.ssl_vhost("alpn.test", ["www.alpn.test"], extra=PROTOCOLS), plain=False)
    h.start()
    for name in ("alpn.test", "www.alpn.test"):
        cert = wait_real_cert(h, name)
        assert sorted(acmetest.san_names(cert)) == ["alpn.test", "www.alpn.test"]
    assert answered_types(h) == ["tls-alpn-01", "tls-alpn-01"]
    log = h.log_text()
    assert "ACME02610: alpn.test: answered a tls-alpn-01 challenge" in log
    assert "ACME02610: www.alpn.test: answered a tls-alpn-01 challenge" in log
    assert "ACME01045" not in log  # no http-01 answer was asked for
    # After the order, the answers are gone: a handshake gets the vhost's certificate.
    proto, cert = acme_tls_handshake(h.https_port, "alpn.test")
    assert proto == ACME_TLS and acme_identifier(cert) is None and not issuer_is_self(cert)


def test_default_picks_tls_alpn_without_plain_listener(httpd_factory, pebble):
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain nohttp.test\n" +
                 h.ssl_vhost("nohttp.test", extra=PROTOCOLS), plain=False)
    h.start()
    cert = wait_real_cert(h, "nohttp.test")
    assert acmetest.san_names(cert) == ["nohttp.test"]
    assert answered_types(h) == ["tls-alpn-01"]
    log = h.log_text()
    assert "http-01 cannot answer (every Listen is served with TLS)" in log
    assert "ACME02610: nohttp.test: answered a tls-alpn-01 challenge" in log


def test_default_prefers_http01_when_both_answer(httpd_factory, pebble):
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain both.test\n" + h.ssl_vhost("both.test", extra=PROTOCOLS))
    h.start()
    wait_real_cert(h, "both.test")
    assert answered_types(h) == ["http-01"]
    assert "ACME01045: both.test: answered challenge" in h.log_text()
    assert "ACME02610" not in h.log_text()


def test_default_says_once_why_tls_alpn_is_not_used(httpd_factory, pebble):
    """A TLS vhost without acme-tls/1: http-01 is used, and the log says so once at start,
    with the line that would enable tls-alpn-01."""
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain plainish.test\n" + h.ssl_vhost(
        "plainish.test", extra="    Protocols http/1.1\n"))
    h.start()
    wait_real_cert(h, "plainish.test")
    h.settle()
    log = h.log_text()
    notes = [line for line in log.splitlines() if "ACME02600" in line]
    # One at the start and one at the automatic restart that activated the certificate.
    assert len(notes) == 2, log
    assert ("plainish.test: tls-alpn-01 is not used for plainish.test: the TLS virtual host "
            "plainish.test (") in notes[0]
    assert "the line 'Protocols http/1.1 acme-tls/1' there would" in notes[0]


def test_nothing_can_answer_is_a_warning_at_start(httpd_factory, pebble):
    """Default challenges, no plain listener and no acme-tls/1: the start says that no
    certificate can be obtained, and the attempt fails as a configuration error, without
    asking the CA to validate anything."""
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain stuck.test\n" + h.ssl_vhost("stuck.test"), plain=False)
    h.start()
    assert h.wait_log("ACME01055: stuck.test"), h.log_text()[-3000:]
    h.allowed_errors += ["ACME01055"]
    log = h.log_text()
    assert "ACME02601: stuck.test: no challenge type can answer for stuck.test" in log
    assert "no challenge type we can answer for stuck.test: the CA offers " in log
    assert "we answer http-01, tls-alpn-01 (ACMEChallenges), none of them for this name" in log
    assert answered_types(h) == []
    assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "stuck.test"))


def test_configtest_explicit_tls_alpn_needs_protocols(httpd_factory):
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEChallenges http-01 tls-alpn-01\nACMEDomain need.test\n" +
                 h.ssl_vhost("need.test"))
    r = h.configtest()
    out = r.stdout + r.stderr + h.log_text()
    assert r.returncode != 0, out
    assert (f"ACME02602: ACMEChallenges tls-alpn-01: the TLS virtual host need.test "
            f"({h.conf_path}:") in out
    assert "add the line 'Protocols http/1.1 acme-tls/1' to it" in out
    # With the line added, configtest passes and the server starts.
    h.write_conf(ACCOUNT + "ACMEChallenges http-01 tls-alpn-01\nACMEDomain need.test\n" +
                 h.ssl_vhost("need.test", extra=PROTOCOLS))
    r = h.configtest()
    assert r.returncode == 0, r.stdout + r.stderr


def test_configtest_protocols_outside_vhost_and_in_ifmodule(httpd_factory):
    """Protocols given once for all vhosts, and SSLEngine inside <IfModule>: the check reads
    the configuration as httpd does."""
    h = httpd_factory()
    vhost = (f"<VirtualHost 127.0.0.1:{h.https_port}>\n    ServerName ifm.test\n"
             "    <IfModule ssl_module>\n        SSLEngine on\n    </IfModule>\n"
             "</VirtualHost>\n")
    h.write_conf(ACCOUNT + "ACMEChallenges tls-alpn-01\nACMEDomain ifm.test\n" + vhost)
    r = h.configtest()
    assert r.returncode != 0 and "ACME02602" in r.stdout + r.stderr + h.log_text()
    h.write_conf("Protocols h2 http/1.1 acme-tls/1\n" + ACCOUNT +
                 "ACMEChallenges tls-alpn-01\nACMEDomain ifm.test\n" + vhost)
    r = h.configtest()
    assert r.returncode == 0, r.stdout + r.stderr + h.log_text()


def test_configtest_explicit_http01_needs_a_plain_listener(httpd_factory):
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEChallenges http-01\nACMEDomain tlsonly.test\n" +
                 h.ssl_vhost("tlsonly.test"), plain=False)
    r = h.configtest()
    out = r.stdout + r.stderr + h.log_text()
    assert r.returncode != 0, out
    assert "ACME02604: ACMEChallenges http-01: no Listen reaches a server without TLS" in out


def test_answer_survives_graceful_restart_and_hostile_job_entries(httpd_factory):
    """The parent publishes a pending tls-alpn-01 answer again after a graceful restart, made
    anew from the key authorization in the job file; entries it must not trust are ignored."""
    h = httpd_factory()
    far = int(time.time()) + 3600
    keyauth = f"{TOKEN}.{THUMB}"
    other = "otherTOKEN_abcdefghijklmnopqrstuvwxyz0123456"
    write_job(h, "keep.test", [
        {"type": "tls-alpn-01", "token": TOKEN, "host": "keep.test", "keyauth": keyauth,
         "expires": far},
        # Not a name of this ACMEDomain: the parent (root) must not answer for it.
        {"type": "tls-alpn-01", "token": other, "host": "victim.test",
         "keyauth": f"{other}.{THUMB}", "expires": far},
        # A key authorization that is not token.thumbprint.
        {"type": "tls-alpn-01", "token": other, "host": "www.keep.test",
         "keyauth": f"{other}.x", "expires": far},
    ], next_run=far)
    h.write_conf(ACCOUNT + "ACMEDomain keep.test www.keep.test\n" +
                 h.ssl_vhost("keep.test", ["www.keep.test", "victim.test"], extra=PROTOCOLS))
    h.start()

    def check():
        proto, cert = acme_tls_handshake(h.https_port, "keep.test")
        assert proto == ACME_TLS
        assert acme_identifier(cert) == (True, expected_acme_identifier(keyauth))
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["keep.test"]
        # An ordinary handshake never sees it.
        plain = acmetest.tls_peer_cert(h.https_port, "keep.test")
        assert acme_identifier(plain) is None
        for name in ("victim.test", "www.keep.test"):
            assert acme_identifier(acme_tls_handshake(h.https_port, name)[1]) is None
        return cert

    first = check()
    log = h.log_text()
    assert "ACME02612: keep.test: the tls-alpn-01 answer for victim.test" in log
    assert "it is not for a name of this ACMEDomain" in log
    assert "ACME02612: keep.test: the tls-alpn-01 answer for www.keep.test" in log
    assert "not of the form token.thumbprint" in log
    old_children = set(h.children())
    h.graceful()
    assert h.wait_log("ACME01043", count=2)
    acmetest.wait_until(lambda: not set(h.children()) & old_children, 20,
                        "the children of the old generation gone")
    second = check()
    # Made anew by the new generation's parent: another key, the same key authorization.
    assert second.public_key().public_numbers() != first.public_key().public_numbers()


def test_ip_identifier_by_tls_alpn(httpd_factory, pebble_tls_only):
    """RFC 8738: the validator sends the reverse name (1.0.0.127.in-addr.arpa) and expects the
    IP address as the certificate's only SAN."""
    pb = pebble_tls_only
    h = httpd_factory(ca=pb)
    h.write_conf(ACCOUNT + "ACMEDomain 127.0.0.1\n" +
                 h.ssl_vhost("127.0.0.1", extra=PROTOCOLS), plain=False)
    h.start()
    cert = wait_real_cert(h, "127.0.0.1")
    assert acmetest.san_names(cert) == ["127.0.0.1"]
    assert answered_types(h) == ["tls-alpn-01"]
    assert "ACME02610: 1.0.0.127.in-addr.arpa: answered a tls-alpn-01 challenge" in h.log_text()


def kinds(requests):
    """"POST /authZ/xyz" -> "POST /authZ": requests without their ids."""
    return [" ".join([m, "/" + p.split("/")[1]]) for m, p in (r.split(" ", 1) for r in requests)]


def steps(requests):
    """The protocol steps of one issuance: up to the certificate download, a request repeated
    at once (a badNonce retry: pebble rejects 5% of good nonces) counted once, polls of the
    order left out (their number follows the timing)."""
    out = []
    for k in kinds(requests):
        if out and out[-1] == k and k != "POST /my-order":
            continue
        out.append(k)
        if k == "POST /certZ":
            break
    return [k for k in out if k != "POST /my-order"]


def test_requests_per_certificate_tls_alpn_beside_http01(httpd_factory, pebble, capsys):
    """A first certificate for one name through the module, once by http-01 and once by
    tls-alpn-01: the same requests to the CA."""
    counts = {}
    for kind in ("http-01", "tls-alpn-01"):
        h = httpd_factory()
        name = f"count-{kind}.test"
        h.write_conf(ACCOUNT + f"ACMEChallenges {kind}\nACMEDomain {name}\n" +
                     h.ssl_vhost(name, extra=PROTOCOLS), plain=kind == "http-01")
        mark = pebble.request_count()
        h.start()
        assert h.wait_log(f"ACME01054: {name}"), h.log_text()[-3000:]
        h.stop()
        counts[kind] = pebble.requests()[mark:]
        assert answered_types(h) == [kind]
    with capsys.disabled():
        for kind, reqs in counts.items():
            print(f"\n[{kind}] first certificate, one name: {len(steps(reqs))} steps + polls; "
                  f"all requests: {kinds(reqs)}")
    assert steps(counts["http-01"]) == steps(counts["tls-alpn-01"])
    assert len(steps(counts["http-01"])) == 8  # + an order poll before and after finalize


def test_graceful_restart_while_the_ca_validates(httpd_factory, pebble_tls_only):
    """A graceful restart between publishing the answer and the CA's validation: the new
    generation has new shared memory; the parent publishes the answer the worker kept in the
    job file again, and the CA's handshake after the restart finds it."""
    from chaosproxy import ChaosProxy
    pb = pebble_tls_only
    proxy = ChaosProxy(pb)
    try:
        h = httpd_factory(ca=pb)
        h.write_conf(f"ACMECertificateAuthority {proxy.directory}\n"
                     f"ACMECACertificateFile {pb.ca_file}\n" + ACCOUNT +
                     "ACMEDomain midway.test\n" + h.ssl_vhost("midway.test", extra=PROTOCOLS),
                     ca=False, plain=False)
        # The request that tells the CA to validate waits in the proxy: the answer is up.
        proxy.hold("/chalZ/")
        h.start()
        assert proxy.wait_held(), h.log_text()[-3000:]
        with open(os.path.join(h.store, "jobs", "midway.test.json")) as f:
            kept = json.load(f)["challenges"]
        assert [c["type"] for c in kept] == ["tls-alpn-01"]
        keyauth = kept[0]["keyauth"]
        old_children = set(h.children())
        h.graceful()
        assert h.wait_log("ACME01043", count=1), h.log_text()[-3000:]
        acmetest.wait_until(lambda: not set(h.children()) & old_children, 20,
                            "the children of the old generation gone")
        # Only the new generation answers now, from what its parent published again.
        proto, cert = acme_tls_handshake(h.https_port, "midway.test")
        assert proto == ACME_TLS
        assert acme_identifier(cert) == (True, expected_acme_identifier(keyauth))
        proxy.release()
        cert = wait_real_cert(h, "midway.test", timeout=60)
        assert acmetest.san_names(cert) == ["midway.test"]
    finally:
        proxy.stop()


def test_section_chooses_tls_alpn_for_its_certificate_only(httpd_factory):
    """ACMEChallenges in an <ACMEDomain> section: that certificate is validated by
    tls-alpn-01, the other by the global choice (http-01)."""
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEChallenges http-01\n"
                 "<ACMEDomain sec.test>\n    ACMEChallenges tls-alpn-01\n</ACMEDomain>\n"
                 "ACMEDomain glob.test\n" +
                 h.ssl_vhost("sec.test", extra=PROTOCOLS) +
                 h.ssl_vhost("glob.test", extra=PROTOCOLS))
    h.start()
    wait_real_cert(h, "sec.test")
    wait_real_cert(h, "glob.test")
    lines = h.log_text().splitlines()
    assert any(line.endswith("sec.test: tls-alpn-01 for sec.test answered") for line in lines)
    assert any(line.endswith("glob.test: http-01 for glob.test answered") for line in lines)
    h.write_conf(ACCOUNT + "<ACMEDomain sec.test>\n    ACMEChallenges tls-alpn-01\n"
                 "</ACMEDomain>\n" + h.ssl_vhost("sec.test"))
    r = h.configtest()
    out = r.stdout + r.stderr + h.log_text()
    assert r.returncode != 0 and "ACME02602" in out and "(ACMEDomain sec.test)" in out


def test_handshake_path_keeps_memory_flat(httpd_factory):
    """Every acme-tls/1 handshake looks the answer up and hands mod_ssl two PEM strings from
    the connection's pool: nothing may stay behind per handshake (the certificate's PEM, about
    750 bytes, kept per handshake would be 1.5 MiB over 2000). Measured with prefork, whose single-threaded
    children show a leak plainly: with the event MPM each worker thread's share of the
    allocator warms up over thousands of handshakes (about 900, 250, 300, 220, 100 KiB per
    thousand here), while prefork's children grow by about 40 KiB per thousand after the
    first. The measure starts after a thousand."""
    def rss_by_child():
        out = {}
        for pid in h.children():
            try:
                with open(f"/proc/{pid}/status") as f:
                    out[pid] = next(int(line.split()[1]) for line in f
                                    if line.startswith("VmRSS:"))
            except (OSError, StopIteration):
                continue
        return out

    h = httpd_factory(mpm="prefork")
    far = int(time.time()) + 3600
    keyauth = f"{TOKEN}.{THUMB}"
    write_job(h, "flat.test", [{"type": "tls-alpn-01", "token": TOKEN, "host": "flat.test",
                                "keyauth": keyauth, "expires": far}], next_run=far)
    h.write_conf(ACCOUNT + "ACMEDomain flat.test\n" +
                 h.ssl_vhost("flat.test", extra=PROTOCOLS), plain=False)
    h.start()
    h.settle()
    for _ in range(1000):  # warm up: pools, arenas and caches reach their size
        acme_tls_handshake(h.https_port, "flat.test")
    before = rss_by_child()
    n = 2000
    t0 = time.monotonic()
    for _ in range(n):
        proto, cert = acme_tls_handshake(h.https_port, "flat.test")
    elapsed = time.monotonic() - t0
    after = rss_by_child()
    # A child prefork starts meanwhile (when the busy one lingers on a close) is not growth.
    common = set(before) & set(after)
    assert common, (before, after)
    grown = sum(after[pid] - before[pid] for pid in common)
    assert proto == ACME_TLS and acme_identifier(cert) == (True, expected_acme_identifier(keyauth))
    print(f"\n{n} acme-tls/1 handshakes in {elapsed:.1f} s; children grew by {grown} KiB")
    # 250 KiB: 128 bytes a handshake; the answer's PEM kept would be 1.5 MiB.
    assert grown < n / 8, f"the children grew by {grown} KiB over {n} handshakes"


def test_ipv6_identifier_by_tls_alpn(httpd_factory, pebble_tls_only):
    """RFC 8738 for IPv6: pebble connects to [::1] on its tlsPort with the ip6.arpa reverse name
    as SNI; the certificate for ::1 is obtained and activated."""
    pb = pebble_tls_only
    h = httpd_factory(ca=pb)
    port = h.https_port
    acmetest.check_port_free(port, "httpd https")
    h.write_conf(ACCOUNT + f"Listen [::1]:{port}\nACMEChallenges tls-alpn-01\nACMEDomain ::1\n"
                 f"<VirtualHost [::1]:{port}>\n    ServerName ip6.test\n    ServerAlias ::1\n"
                 f"    SSLEngine on\n{PROTOCOLS}</VirtualHost>\n", plain=False)
    h.start()
    assert h.wait_log("ACME01020: ::1: new certificate activated", timeout=30), \
        h.log_text()[-3000:]
    reverse = ".".join("1" + "0" * 31) + ".ip6.arpa"
    assert f"ACME02610: {reverse}: answered a tls-alpn-01 challenge from ::1" in h.log_text()
    assert answered_types(h) == ["tls-alpn-01"]
    chain = os.path.join(h.store, "domains", "::1", "fullchain.pem")
    leaf = acmetest.split_pem_chain(open(chain, "rb").read())[0]
    assert acmetest.san_names(leaf) == ["::1"]


def test_two_key_types_by_tls_alpn_take_turns(httpd_factory, pebble_tls_only):
    """tls-alpn-01 has one answer per name (the validator's SNI does not say which order it
    checks): the ECDSA and the RSA order of one ACMEDomain must not publish at the same time,
    or each overwrites the other's answer and a validation fails. They take turns, and both
    certificates come without a failed validation."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from test_httpd import tls_cert_for_auth
    names = ["kt.test", "a.kt.test", "b.kt.test", "c.kt.test"]
    h = httpd_factory(ca=pebble_tls_only)
    h.write_conf(ACCOUNT + "ACMEChallenges tls-alpn-01\nACMEKeyType ec256 rsa2048\n"
                 "ACMEDomain " + " ".join(names) + "\n" +
                 h.ssl_vhost(names[0], names[1:], extra=PROTOCOLS), plain=False)
    h.start()

    def both_real():
        try:
            ecc = tls_cert_for_auth(h.https_port, names[0], "ec")
            rsac = tls_cert_for_auth(h.https_port, names[0], "rsa")
        except OSError:
            return None
        return None if issuer_is_self(ecc) or issuer_is_self(rsac) else (ecc, rsac)

    ecc, rsac = acmetest.wait_until(both_real, 30, lambda: "ECDSA and RSA certificates from "
                                    "the CA\n" + h.log_text()[-3000:])
    assert isinstance(ecc.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(rsac.public_key(), rsa.RSAPublicKey)
    for c in (ecc, rsac):
        assert sorted(acmetest.san_names(c)) == sorted(names)
    log = h.log_text()
    assert "ACME00025" not in log, "a validation failed:\n" + log[-3000:]
    assert "ACME02302" not in log, "an order failed and waits for a retry"
