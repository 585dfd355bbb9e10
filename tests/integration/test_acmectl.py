"""acmectl, the operator's tool, against the real pebble and Debian's apache2: status from the
store while the server is down, renew picked up by the running server, revoke (pebble's own
record of the revocation), account show / rollover / deactivate, check on a broken store."""
import json
import os
import pwd
import stat
import subprocess
import urllib.request
import ssl

import pytest

import acmetest
from chaosproxy import ChaosProxy
from test_httpd import ACCOUNT, wait_real_cert

BUILDDIR = os.environ.get("top_builddir") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
ACMECTL = os.path.join(BUILDDIR, "acmectl")

STATUS_LOCATION = """<Location /acme-status>
    SetHandler acme-status
    Require ip 127.0.0.1
</Location>
"""


def acmectl(h, *args, ca=False):
    """Runs acmectl on the server's store; ca=True trusts pebble's listener for the CA's TLS."""
    if not os.access(ACMECTL, os.X_OK):
        pytest.fail(f"{ACMECTL} is not built: run make")
    argv = [ACMECTL, "--store", h.store, *args]
    if ca:
        argv += ["--ca-file", h.pebble.ca_file]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def issued(httpd_factory, name, extra=""):
    """A running server that has obtained a certificate for name; returns it and the cert."""
    h = httpd_factory()
    h.write_conf(ACCOUNT + STATUS_LOCATION + extra + f"ACMEDomain {name}\n" +
                 h.ssl_vhost(name))
    h.start()
    cert = wait_real_cert(h, name)
    h.wait_driver()
    return h, cert


def serial_hex(cert):
    return format(cert.serial_number, "x")


def served_serial(h, name):
    c = acmetest.tls_peer_cert(h.https_port, name)
    return None if c.issuer == c.subject else c.serial_number


def staged_count(h, name):
    return h.log_text().count(f"ACME01059: new certificates staged for {name}")


def wait_new_serial(h, name, old, staged_before, timeout=60.0):
    """Waits for a certificate other than old to be served: for the driver to stage one (the
    staged_before+1st ACME01059 line), then asks for the graceful restart that activates it
    (the server's own waits for its one-a-minute limit)."""
    assert h.wait_log(f"ACME01059: new certificates staged for {name}", timeout=timeout,
                      count=staged_before + 1), h.log_text()[-3000:]
    h.graceful()
    return acmetest.wait_until(lambda: (lambda s: s if s and s != old else None)(
        served_serial(h, name)), timeout, lambda: f"a new certificate for {name}\n"
                                                  f"{h.log_text()[-3000:]}")


def test_help_and_usage():
    r = subprocess.run([ACMECTL, "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for cmd in ("status", "renew", "revoke", "account", "import", "check"):
        assert f"  {cmd} " in r.stdout
    for cmd in ("status", "renew", "revoke", "account", "check"):
        r = subprocess.run([ACMECTL, cmd, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.startswith("usage: acmectl"), (cmd, r.stdout)
    r = subprocess.run([ACMECTL, "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
    r = subprocess.run([ACMECTL, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("acmectl (mod_acme) ")


def test_status_while_httpd_down_matches_the_servers_page(httpd_factory):
    h, cert = issued(httpd_factory, "st.test")
    code, _, body = acmetest.http_get(h.http_port, "localhost", "/acme-status/st.test")
    assert code == 200, body
    page = json.loads(body)
    h.stop()
    assert not h.processes()

    r = acmectl(h, "status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "KEY", "STATE"]
    row = [line for line in lines if line.startswith("st.test ")]
    assert len(row) == 1, r.stdout
    assert row[0].split()[1:3] == ["ec256", "valid"], row
    assert "(window)" in row[0]

    r = acmectl(h, "status", "--json", "st.test")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["state"] == "valid"
    assert int(doc["certificate"]["serial"], 16) == cert.serial_number
    # The same document as the running server's acme-status page, but for what only the
    # running server knows.
    for key in ("store-name", "state", "key-type", "certificate", "failures", "renewal", "ca",
                "account"):
        assert doc[key] == page[key], key
    whole = json.loads(acmectl(h, "status", "--json").stdout)
    assert [c["store-name"] for c in whole["certificates"]] == ["st.test"]
    assert "PRIVATE KEY" not in r.stdout

    r = acmectl(h, "status", "nope.test")
    assert r.returncode == 1 and "no certificate nope.test" in r.stderr


def test_renew_is_picked_up_by_the_running_server(httpd_factory):
    h, cert = issued(httpd_factory, "rn.test")
    staged = staged_count(h, "rn.test")
    r = acmectl(h, "renew", "rn.test")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the running server" in r.stdout
    assert h.wait_log("ACME03205: rn.test: renewal requested (acmectl"), h.log_text()[-3000:]
    acmetest.wait_until(lambda: not os.path.exists(os.path.join(h.store, "jobs",
                                                                "rn.test.renew")),
                        10, lambda: "the driver removes the request")
    new = wait_new_serial(h, "rn.test", cert.serial_number, staged)
    assert new != cert.serial_number
    # Asked once, renewed once.
    assert h.log_text().count("ACME03205: rn.test") == 1


def test_renew_is_reported_as_requested_while_it_runs(httpd_factory, pebble):
    """The running server's acme-status says reason "requested" while the renewal the operator
    asked for waits at the CA (held by the proxy), and the request file is gone already."""
    proxy = ChaosProxy(pebble)
    try:
        h = httpd_factory()
        h.write_conf(f"ACMECertificateAuthority {proxy.directory}\n"
                     f"ACMECACertificateFile {pebble.ca_file}\n" + ACCOUNT + STATUS_LOCATION +
                     "ACMEDomain rq.test\n" + h.ssl_vhost("rq.test"), ca=False)
        h.start()
        cert = wait_real_cert(h, "rq.test")
        h.wait_driver()
        staged = staged_count(h, "rq.test")
        proxy.hold("/order-plz")
        assert acmectl(h, "renew", "rq.test").returncode == 0
        assert proxy.wait_held(), h.log_text()[-3000:]

        def requested():
            code, _, body = acmetest.http_get(h.http_port, "localhost", "/acme-status/rq.test")
            doc = json.loads(body) if code == 200 else {}
            return doc if doc.get("renewal", {}).get("reason") == "requested" else None
        doc = acmetest.wait_until(requested, 10, lambda: h.log_text()[-2000:])
        assert doc["state"] == "renewing"
        assert int(doc["certificate"]["serial"], 16) == cert.serial_number
        assert not os.path.exists(os.path.join(h.store, "jobs", "rq.test.renew"))
        proxy.release()
        wait_new_serial(h, "rq.test", cert.serial_number, staged)
    finally:
        proxy.stop()


def test_renew_while_the_server_is_down_waits_for_its_start(httpd_factory):
    h, cert = issued(httpd_factory, "rd.test")
    h.stop()
    staged = staged_count(h, "rd.test")
    r = acmectl(h, "renew", "rd.test")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "no running server" in r.stdout
    req = os.path.join(h.store, "jobs", "rd.test.renew")
    st = os.lstat(req)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == pwd.getpwnam("www-data").pw_uid
    doc = json.loads(acmectl(h, "status", "--json", "rd.test").stdout)
    assert doc["renewal"]["reason"] == "requested"
    h.start()
    assert h.wait_log("ACME03205: rd.test: renewal requested"), h.log_text()[-3000:]
    wait_new_serial(h, "rd.test", cert.serial_number, staged)


def test_renew_request_is_hostile_input_to_the_driver(httpd_factory):
    """A link planted as the request (jobs/ is the User's) renews nothing and is removed."""
    h, cert = issued(httpd_factory, "hr.test")
    os.symlink("/etc/passwd", os.path.join(h.store, "jobs", "hr.test.renew"))
    assert h.wait_log("ACME03202: hr.test"), h.log_text()[-3000:]
    assert not os.path.lexists(os.path.join(h.store, "jobs", "hr.test.renew"))
    assert "ACME03205: hr.test" not in h.log_text()
    h.allowed_errors.append("ACME03202")


def pebble_cert_status(pebble, serial):
    ctx = ssl.create_default_context(cafile=pebble.ca_file)
    url = f"https://127.0.0.1:{pebble.mgmt_port}/cert-status-by-serial/{serial}"
    with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
        return json.loads(resp.read())


def test_revoke_then_a_new_certificate(httpd_factory, pebble):
    h, cert = issued(httpd_factory, "rv.test")
    assert pebble_cert_status(pebble, serial_hex(cert))["Status"] == "Valid"
    staged = staged_count(h, "rv.test")
    r = acmectl(h, "revoke", "--reason", "keyCompromise", "rv.test", ca=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"serial {serial_hex(cert)} revoked" in r.stdout
    st = pebble_cert_status(pebble, serial_hex(cert))
    assert st["Status"] == "Revoked", st
    assert h.wait_log("ACME03205: rv.test: renewal requested after a revocation"), \
        h.log_text()[-3000:]
    wait_new_serial(h, "rv.test", cert.serial_number, staged)

    r = acmectl(h, "revoke", "--reason", "sleepy", "rv.test", ca=True)
    assert r.returncode == 2 and "not a revocation reason" in r.stderr


def account_dirs(h):
    return sorted(os.listdir(os.path.join(h.store, "accounts")))


def test_account_show_rollover_deactivate(httpd_factory, pebble):
    h, cert = issued(httpd_factory, "ac.test")
    r = acmectl(h, "account", "show", "--json")
    assert r.returncode == 0, r.stderr
    (acct,) = json.loads(r.stdout)
    assert acct["ca"] == pebble.directory and acct["url"].startswith("https://")
    assert "PRIVATE" not in r.stdout
    folder = os.path.join(h.store, acct["folder"])
    old_key = open(os.path.join(folder, "account.key")).read()

    r = acmectl(h, "account", "rollover", ca=True)
    assert r.returncode == 0, r.stdout + r.stderr
    (after,) = json.loads(acmectl(h, "account", "show", "--json").stdout)
    assert after["url"] == acct["url"]
    assert after["key_thumbprint"] != acct["key_thumbprint"]
    key = os.path.join(folder, "account.key")
    assert open(key).read() != old_key
    st = os.stat(key)
    assert st.st_uid == pwd.getpwnam("www-data").pw_uid and stat.S_IMODE(st.st_mode) == 0o600
    assert not os.path.exists(os.path.join(folder, "account.key.new"))

    # A rollover that stopped after the CA took the new key, before the swap: the old key and
    # account.json back in place, the new key left as account.key.new. The next rollover
    # finishes it (the CA knows the account by that key), then rolls over again.
    new_key = open(key).read()
    new_json = open(os.path.join(folder, "account.json")).read()
    www = pwd.getpwnam("www-data")
    for fname, text in (("account.key.new", new_key), ("account.key", old_key),
                        ("account.json", json.dumps({"url": acct["url"], "ca": acct["ca"],
                                                     "key": acct["key_thumbprint"]}))):
        path = os.path.join(folder, fname)
        with open(path, "w") as f:
            f.write(text)
        os.chown(path, www.pw_uid, www.pw_gid)
        os.chmod(path, 0o600)
    assert json.loads(new_json)["key"] == after["key_thumbprint"]
    r = acmectl(h, "account", "rollover", ca=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "an earlier rollover had been accepted by the CA" in r.stdout
    assert f"was {after['key_thumbprint']}" in r.stdout
    (after,) = json.loads(acmectl(h, "account", "show", "--json").stdout)
    assert after["url"] == acct["url"]
    assert not os.path.exists(os.path.join(folder, "account.key.new"))
    # A key the CA never took, left by a rollover refused or cut short before the CA's
    # answer, is removed.
    with open(os.path.join(folder, "account.key.new"), "w") as f:
        f.write(old_key)
    r = acmectl(h, "account", "rollover", ca=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "earlier rollover" not in r.stdout
    assert not os.path.exists(os.path.join(folder, "account.key.new"))
    # The next order works with the new key: the same account, no new registration.
    registered = h.log_text().count("ACME00014")
    staged = staged_count(h, "ac.test")
    assert acmectl(h, "renew", "ac.test").returncode == 0
    second = wait_new_serial(h, "ac.test", cert.serial_number, staged)
    assert h.log_text().count("ACME00014") == registered
    assert "ACME01051" not in h.log_text()

    r = acmectl(h, "account", "deactivate", ca=True)
    assert r.returncode == 2 and "--yes" in r.stderr
    r = acmectl(h, "account", "deactivate", "--yes", ca=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "registers a new account" in r.stdout
    assert any(".deactivated-" in d for d in account_dirs(h))
    # The next issuance registers a new account (ACMEAgreement accepted).
    staged = staged_count(h, "ac.test")
    assert acmectl(h, "renew", "ac.test").returncode == 0
    wait_new_serial(h, "ac.test", second, staged)
    assert h.log_text().count("ACME00014") == registered + 1
    (new,) = json.loads(acmectl(h, "account", "show", "--json").stdout)
    assert new["url"] != acct["url"]


def test_check_finds_a_broken_store_and_its_fixes_work(httpd_factory):
    h, _ = issued(httpd_factory, "ck.test")
    h.stop()
    r = acmectl(h, "check")
    assert r.returncode == 0, r.stdout
    assert "owners and modes are right (the server's User: www-data)" in r.stdout
    # What an operator's slip leaves: a User's folder given to root, a file of root's among
    # the User's, a root folder others may write, a key others may read.
    s = h.store
    os.chown(os.path.join(s, "jobs"), 0, 0)
    with open(os.path.join(s, "accounts", "stray"), "w") as f:
        f.write("x")
    os.chmod(os.path.join(s, "archive"), 0o777)
    gen = os.readlink(os.path.join(s, "domains", "ck.test"))
    key = os.path.normpath(os.path.join(s, "domains", gen, "privkey.pem"))
    os.chmod(key, 0o644)
    r = acmectl(h, "check")
    assert r.returncode == 1, r.stdout
    out = r.stdout
    assert f"{s}/jobs: belongs to root" in out
    assert f"{s}/accounts/stray: belongs to root" in out
    assert f"{s}/archive: can be written by group or others (mode 0777)" in out
    assert f"{key}: a private key" in out
    assert "4 problems" in out
    fixes = [line.split("fix: ", 1)[1] for line in out.splitlines() if "  fix: " in line]
    assert len(fixes) == 4
    for fix in fixes:
        subprocess.run(fix, shell=True, check=True)
    r = acmectl(h, "check")
    assert r.returncode == 0, r.stdout
    # The server starts on the fixed store.
    h.start()
    wait_real_cert(h, "ck.test")
