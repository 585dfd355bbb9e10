"""IP address certificates (RFC 8738) over IPv6 beside IPv4: real pebble validates http-01 at
[::1] on the server's port, and a TLS client connecting to [::1] sees the addresses as iPAddress
SANs. (IPv4 alone: test_httpd.py::test_ip_address_certificate.)"""
import socket

import pytest

import acmetest
from test_httpd import ACCOUNT, issuer_is_self


def ipv6_loopback_or_skip():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as e:
        pytest.skip(f"no IPv6 loopback here (::1: {e})")


def ip_vhost(h, name, alias=None):
    """A TLS vhost on 127.0.0.1 and [::1]: clients give no SNI for an address, so the vhost of
    the address and port is the one that answers."""
    return (f"Listen [::1]:{h.http_port}\nListen [::1]:{h.https_port}\n"
            f"<VirtualHost 127.0.0.1:{h.https_port} [::1]:{h.https_port}>\n"
            f"    ServerName {name}\n" + (f"    ServerAlias {alias}\n" if alias else "") +
            "    SSLEngine on\n</VirtualHost>\n")


def wait_cert_at(h, address, timeout=30.0):
    def real():
        try:
            c = acmetest.tls_peer_cert(h.https_port, None, address=address)
        except OSError:
            return None
        return None if issuer_is_self(c) else c
    return acmetest.wait_until(real, timeout, lambda: f"a certificate from the CA at [{address}]"
                                                      f"\n{h.log_text()[-3000:]}")


def assert_validated_at(h, address):
    """pebble fetched the http-01 answer from address (the access log's client), with the
    address as Host, and got it."""
    host = f"[{address}]" if ":" in address else address
    with open(f"{h.root}/access.log") as f:
        lines = [line.split() for line in f]
    assert any(w[0] == address and w[1] == f"{host}:{h.http_port}" and
               w[3].startswith("/.well-known/acme-challenge/") and w[5] == "200"
               for w in lines), lines


def test_ipv6_address_certificate(httpd_factory):
    ipv6_loopback_or_skip()
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain ::1\n" + ip_vhost(h, "localhost", alias="::1"))
    h.start()
    cert = wait_cert_at(h, "::1")
    assert acmetest.san_names(cert) == ["::1"]
    assert_validated_at(h, "::1")


def test_ipv4_and_ipv6_in_one_certificate(httpd_factory):
    ipv6_loopback_or_skip()
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain 127.0.0.1 ::1\n" + ip_vhost(h, "127.0.0.1"))
    h.start()
    for address in ("::1", "127.0.0.1"):
        cert = wait_cert_at(h, address)
        assert sorted(acmetest.san_names(cert)) == ["127.0.0.1", "::1"]
    assert_validated_at(h, "::1")
    assert_validated_at(h, "127.0.0.1")


def test_ipv6_name_needs_server_alias(httpd_factory):
    """httpd takes no IPv6 literal as ServerName ("[::1]" reads as a wildcard pattern, "::1" as
    a port): configtest's warning about an ACMEDomain no vhost uses says where the address
    goes."""
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain ::1\n" + ip_vhost(h, "localhost"))
    r = h.configtest()
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "ACME01002: ACMEDomain ::1" in out, out
    assert "an IPv6 address goes in ServerAlias (ServerAlias ::1)" in out, out
