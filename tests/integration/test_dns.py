"""dns-01 and wildcard names in the real Debian Apache against the real pebble, which resolves
through the pebble-challtestsrv that the pebble fixture starts (acmetest.Pebble): the test's
ACMEDNSCommand (dns01_challtestsrv.py) sets and clears TXT records through challtestsrv's
management API, and mod_acme's propagation check asks challtestsrv's DNS port
(ACMEDNSResolver)."""
import json
import os
import shutil
import signal
import time

import pytest

import acmetest
from test_httpd import ACCOUNT, issuer_is_self, served_chain_verifies, wait_real_cert

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dns01_challtestsrv.py")


class DnsCommand:
    """The test's DNS command, copied where the server's User can run it, with its call log."""

    def __init__(self, h, pebble):
        self.dir = acmetest.public_dir(h.root, "dns01")
        os.chmod(self.dir, 0o777)  # the User writes the log (and hang-once's marker) here
        self.script = os.path.join(self.dir, "dns01_challtestsrv.py")
        shutil.copy(SCRIPT, self.script)
        os.chmod(self.script, 0o755)
        self.log = os.path.join(self.dir, "calls.log")
        self.mgmt = f"http://{acmetest.LOOPBACK}:{pebble.dns_mgmt_port}"
        self.resolver = f"{acmetest.LOOPBACK}:{pebble.dns_port}"

    def conf(self, mode="", resolver=None, extra=""):
        return (f"ACMEChallenges dns-01\n"
                f"ACMEDNSCommand {self.script} {self.mgmt} {self.log} {mode}\n"
                f"ACMEDNSResolver {resolver or self.resolver}\n" + extra)

    def calls(self):
        try:
            with open(self.log) as f:
                return [line.split() for line in f if line.strip()]
        except OSError:
            return []


def until_certificate(requests):
    """The requests up to the certificate's download (later ones, like the next generation's
    directory for renewal information, are no part of getting it)."""
    return requests[:requests.index("POST /certZ/") + 1]


def job(h, set_name):
    with open(os.path.join(h.store, "jobs", f"{set_name}.json")) as f:
        return json.load(f)


def test_wildcard_and_base_name_by_dns01(httpd_factory, pebble, tmp_path):
    """A wildcard and its base name in one certificate, both validated over dns-01: the TXT
    records are set by the command, seen at the resolver, validated by pebble through
    challtestsrv, and removed; the certificate serves the base name, a name the vhost's
    wildcard ServerAlias covers, and a vhost of its own that the wildcard covers."""
    h = httpd_factory()
    dns = DnsCommand(h, pebble)
    h.write_conf(ACCOUNT + dns.conf() + "ACMEDomain *.wild.test wild.test\n"
                 + h.ssl_vhost("wild.test", ["*.wild.test"]) + h.ssl_vhost("foo.wild.test"))
    mark = pebble.request_count()
    h.start()
    cert = wait_real_cert(h, "wild.test")
    requests = until_certificate(pebble.requests()[mark:])
    assert sorted(acmetest.san_names(cert)) == ["*.wild.test", "wild.test"]
    for name in ("bar.wild.test", "foo.wild.test"):
        served = acmetest.tls_peer_cert(h.https_port, name)
        assert served.serial_number == cert.serial_number, name
    status, _, body = acmetest.https_get(h.https_port, "foo.wild.test")
    assert status == 200 and b"hello" in body
    served_chain_verifies(h, "bar.wild.test", pebble, tmp_path)
    # Two values at one name (the wildcard's authorization is for its base name), each set up
    # and torn down by the command with mod_md's arguments: action, name, value.
    calls = dns.calls()
    setups = [c for c in calls if c[0] == "setup"]
    assert len(setups) == 2 and {c[1] for c in setups} == {"wild.test"}, calls
    assert len({c[2] for c in setups}) == 2
    assert sorted(c[1:] for c in calls if c[0] == "teardown") == sorted(c[1:] for c in setups)
    log = h.log_text()
    assert "ACME00130: *.wild.test: 2 TXT record(s) visible at 127.0.0.1:" in log
    assert "ACME02710: *.wild.test: ACMEDNSCommand" in log and " setup wild.test " in log
    # The store keeps the wildcard under a name without '*'.
    assert os.path.islink(os.path.join(h.store, "domains", "_wildcard.wild.test"))
    for root, dirs, files in os.walk(h.store):
        assert not any("*" in n for n in dirs + files), (root, dirs, files)
    assert not [c for c in job(h, "_wildcard.wild.test").get("challenges", [])]
    print(f"\ndns-01, wildcard + base name, first certificate: {len(requests)} CA requests "
          f"{requests}")


def test_dns01_requests_beside_http01(httpd_factory, pebble):
    """The CA requests of a first certificate for one name over http-01 and over dns-01: the
    propagation check asks DNS, not the CA, so both cost the same."""
    counts = {}
    for challenge in ("http-01", "dns-01"):
        h = httpd_factory()
        name = f"count-{challenge.split('-')[0]}.test"
        conf = DnsCommand(h, pebble).conf() if challenge == "dns-01" else ""
        h.write_conf(ACCOUNT + conf + f"ACMEDomain {name}\n" + h.ssl_vhost(name))
        mark = pebble.request_count()
        h.start()
        wait_real_cert(h, name)
        counts[challenge] = until_certificate(pebble.requests()[mark:])
        assert f"ACME01054: {name}: new certificate obtained" in h.log_text()
        h.stop()
    print("\nCA requests per first certificate, one name: " +
          ", ".join(f"{k} {len(v)}" for k, v in counts.items()))
    for k, v in counts.items():
        print(f"  {k}: {v}")
    # Directory, nonce, account, order, authorization, challenge, polls, finalize, certificate:
    # the same steps; polls and pebble's 5% badNonce rejections may add one or two.
    assert abs(len(counts["dns-01"]) - len(counts["http-01"])) <= 3


FAILURES = [
    # mode, resolver, extra directives, the cause as the log gives it
    ("fail", None, "", "exited with 3 in"),
    ("hang", None, "ACMEDNSTimeout 2s\n", "was killed after 2 s (ACMEDNSTimeout)"),
    ("noop", None, "ACMEDNSPropagationTimeout 3s\n", "not visible after"),
    ("", "closed", "ACMEDNSPropagationTimeout 3s\n", "could not be asked for"),
]


@pytest.mark.parametrize("mode,resolver,extra,cause", FAILURES,
                         ids=["command-fails", "command-hangs", "txt-never-visible",
                              "resolver-unreachable"])
def test_dns01_failure_keeps_the_last_certificate(httpd_factory, pebble, mode, resolver, extra,
                                                   cause):
    """Each way dns-01 can fail is logged with the domain, the cause and what happens next,
    the attempt backs off, and the certificate obtained before stays served."""
    h = httpd_factory()
    h.allowed_errors = ["ACME01055"]
    dns = DnsCommand(h, pebble)
    name = f"keep-{mode or 'resolver'}.test"
    h.write_conf(ACCOUNT + dns.conf() + f"ACMEDomain {name}\n" + h.ssl_vhost(name))
    h.start()
    good = wait_real_cert(h, name)
    # A name more asks for a new certificate, which now cannot be had.
    closed = f"{acmetest.LOOPBACK}:{acmetest.free_port()}"
    more = f"more-{mode or 'resolver'}.test"
    h.write_conf(ACCOUNT + dns.conf(mode, closed if resolver else None, extra) +
                 f"ACMEDomain {name} {more}\n" + h.ssl_vhost(name, [more]))
    calls_before = len(dns.calls())
    h.graceful()
    assert h.wait_log(f"ACME01055: {name}: no certificate from", timeout=60), h.log_text()[-3000:]
    log = h.log_text()
    line = next(li for li in log.splitlines() if f"ACME01055: {name}:" in li)
    assert cause in line and "retrying later; next attempt" in line and "(attempt 1)" in line, \
        line
    detail = "ACME02712" if mode in ("noop", "") else "ACME02711"
    dline = next(li for li in log.splitlines() if f"{detail}: {name}:" in li)
    assert cause in dline and "the current certificate stays in use" in dline, dline
    if mode == "fail":
        assert "its output: provider API said no to _acme-challenge." in dline, dline
    if resolver:
        assert f"the resolver {closed} could not be asked for _acme-challenge." in dline, dline
    # The record set up is removed again (the CA was never asked to validate).
    if mode in ("noop", ""):
        assert [c[0] for c in dns.calls()[calls_before:]].count("teardown") >= 1
    # The job backs off; the certificate obtained before is still the one served.
    j = job(h, name)
    assert j["failures"] == 1 and j["next-run"] > time.time() + 30
    served = acmetest.tls_peer_cert(h.https_port, name)
    assert served.serial_number == good.serial_number and not issuer_is_self(served)


def test_interrupted_dns01_records_are_torn_down_later(httpd_factory, pebble):
    """The child running the command dies half-way (SIGKILL while setup hangs): the record is
    in the job file, and the next attempt tears it down before it starts again."""
    h = httpd_factory()
    dns = DnsCommand(h, pebble)
    name = "interrupted.test"
    h.write_conf(ACCOUNT + dns.conf("hang-once") + f"ACMEDomain {name}\n" + h.ssl_vhost(name))
    h.start()
    acmetest.wait_until(lambda: any(c[0] == "setup" for c in dns.calls()), 30,
                        lambda: f"the first setup\n{h.log_text()[-3000:]}")
    first = next(c for c in dns.calls() if c[0] == "setup")
    recorded = job(h, name)["challenges"]
    assert [(c["type"], c["host"]) for c in recorded] == [("dns-01", name)], recorded
    os.kill(h.driver_pid(), signal.SIGKILL)
    # The command hung in the killed child outlives it (nothing is left to kill it): this test
    # started it, so it stops it.
    with open(dns.log + ".pids") as f:
        for pid in f.read().split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    cert = wait_real_cert(h, name, timeout=60)
    assert acmetest.san_names(cert) == [name]
    calls = dns.calls()
    # The leftover is torn down (with its value) before the new setup.
    teardown = calls.index(["teardown"] + first[1:])
    assert any(c[0] == "setup" for c in calls[teardown + 1:]), calls
    assert "ACME02713: interrupted.test: an earlier attempt left the dns-01 record" in \
        h.log_text()
    assert not job(h, name).get("challenges")


def test_dns01_inside_an_acmedomain_section(httpd_factory, pebble):
    """dns-01 and its command for one certificate only (an <ACMEDomain> section), http-01 for
    another by the global defaults; a wildcard outside such a section is refused."""
    h = httpd_factory()
    dns = DnsCommand(h, pebble)
    section = "".join("    " + line + "\n" for line in dns.conf().splitlines())
    h.write_conf(ACCOUNT + f"<ACMEDomain *.sec.test>\n{section}</ACMEDomain>\n"
                 "ACMEDomain plain-sec.test\n"
                 + h.ssl_vhost("www.sec.test") + h.ssl_vhost("plain-sec.test"))
    h.start()
    assert acmetest.san_names(wait_real_cert(h, "www.sec.test")) == ["*.sec.test"]
    assert acmetest.san_names(wait_real_cert(h, "plain-sec.test")) == ["plain-sec.test"]
    assert [c[:2] for c in dns.calls() if c[0] == "setup"] == [["setup", "sec.test"]]
    h.stop()
    h.write_conf(ACCOUNT + "ACMEDomain *.sec.test\n" + section.replace("ACMEChallenges dns-01",
                                                                        "ACMEChallenges http-01")
                 .replace("    ", ""))
    r = h.configtest()
    assert r.returncode != 0 and "ACMEDomain *.sec.test" in r.stdout + r.stderr + h.log_text()
    assert "add 'ACMEChallenges http-01 dns-01'" in r.stdout + r.stderr + h.log_text()
