"""ACMENotifyCommand in the real Debian Apache against the real pebble: the test's script
(notify_script.py) appends its arguments, its uid and its ACME_* environment to a file, and the
tests check what an operator's script would see: renewed then activated with the serial served,
one failed with the CA's problem, expiring, ari-changed (through chaosproxy's renewal
information, which pebble 2.4 lacks), a hanging command killed at ACMENotifyTimeout without
delaying issuance, a failing command logged once, a section's own command, and configtest."""
import datetime
import json
import os
import re
import pwd
import shutil
import time

import pytest

import acmetest
from chaosproxy import ChaosProxy
from test_httpd import ACCOUNT, wait_real_cert

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notify_script.py")


class Notify:
    """The test's notify command, copied where the server's User can run it, with its log."""

    def __init__(self, h, name="notify"):
        self.dir = acmetest.public_dir(h.root, name)
        os.chmod(self.dir, 0o777)  # the User appends to the log here
        self.script = os.path.join(self.dir, "notify_script.py")
        shutil.copy(SCRIPT, self.script)
        os.chmod(self.script, 0o755)
        self.log = os.path.join(self.dir, "events.log")

    def directive(self, mode="ok", timeout=None):
        return (f"ACMENotifyCommand {self.script} {self.log} {mode}\n" +
                (f"ACMENotifyTimeout {timeout}\n" if timeout else ""))

    def events(self):
        try:
            with open(self.log) as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []

    def names(self):
        return [(e["argv"][2], e["argv"][3]) for e in self.events()]

    def wait(self, event, name, count=1, timeout=30):
        acmetest.wait_until(lambda: self.names().count((event, name)) >= count, timeout,
                            lambda: f"{count} x {event} for {name} in {self.names()}")
        return [e for e in self.events() if e["argv"][2:4] == [event, name]][count - 1]


def www_uid():
    return pwd.getpwnam("www-data").pw_uid if os.geteuid() == 0 else os.geteuid()


def started_since(h, mark):
    """The notify commands the driver started after log offset mark (ACME03400, debug)."""
    return [li for li in h.log_text()[mark:].splitlines() if "ACME03400" in li]


def restart_and_wait_driver(h):
    """A graceful restart, and the new generation's driver past its first pass: events due at
    the start are started in that pass (their ACME03400 lines come before its ACME02304)."""
    mark = len(h.log_text())
    count = h.log_text().count("AH00493")
    h.graceful()
    assert h.wait_log("AH00493", count=count + 1)
    h.wait_driver()
    return mark


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_first_certificate_renewed_then_activated(httpd_factory, mpm):
    """renewed when the set is staged, activated once the restart serves it, both with the
    serial actually served, run as the User with the certificate in the environment; a later
    restart serving the same certificate tells nothing."""
    h = httpd_factory(mpm=mpm)
    n = Notify(h)
    name = "events.test"
    h.write_conf(ACCOUNT + n.directive() + f"ACMEDomain {name} www.events.test\n" +
                 h.ssl_vhost(name, ["www.events.test"]))
    h.start()
    cert = wait_real_cert(h, name)
    activated = n.wait("activated", name)
    renewed = n.wait("renewed", name)
    assert n.names() == [("renewed", name), ("activated", name)]
    for e in (renewed, activated):
        env = e["env"]
        assert e["uid"] == www_uid() and e["uid"] != 0
        assert e["argv"][1:] == ["ok", e["env"]["ACME_EVENT"], name]
        assert int(env["ACME_SERIAL"], 16) == cert.serial_number
        assert env["ACME_DOMAIN"] == name and env["ACME_NAMES"] == f"{name} www.events.test"
        assert env["ACME_KEY_TYPE"] == "ec256" and env["ACME_ERROR"] == ""
        not_after = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
        assert env["ACME_NOT_AFTER"] == not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert int(env["ACME_NOT_AFTER_EPOCH"]) == int(not_after.timestamp())
        assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert renewed["time"] < activated["time"]
    assert h.wait_log(f"ACME03401: {name}: ACMENotifyCommand {n.script} activated exited with 0")
    line = next(li for li in h.log_text().splitlines()
                if f"ACME03401: {name}:" in li and " activated " in li)
    assert f"its output: told activated for {name}" in line, line
    state = json.load(open(os.path.join(h.store, "jobs", f"{name}.events")))
    assert int(state["activated"], 16) == cert.serial_number
    # Restarts serving the same certificate: nothing more. (The helpers that find the new
    # generation's driver read the event MPM's restart line.)
    for _ in range(2 if mpm == "event" else 0):
        mark = restart_and_wait_driver(h)
        assert not started_since(h, mark), h.log_text()[mark:]
    assert n.names() == [("renewed", name), ("activated", name)]


def test_ca_failure_told_once_with_the_problem(httpd_factory, pebble):
    """A CA that fails new orders: one failed with the problem type and detail; the attempts
    that follow (a restart with a changed configuration tries again at once) tell nothing more
    within a day."""
    proxy = ChaosProxy(pebble)
    try:
        proxy.mode, proxy.only_path = "500", "/order-plz"
        h = httpd_factory()
        h.allowed_errors.append("ACME01055")
        n = Notify(h)
        name = "failing.test"

        def conf(contact):
            h.write_conf(f"ACMECertificateAuthority {proxy.directory}\n"
                         f"ACMECACertificateFile {pebble.ca_file}\n"
                         f"ACMEContactEmail {contact}\nACMEAgreement accepted\n" +
                         n.directive() + f"ACMEDomain {name}\n" + h.ssl_vhost(name), ca=False)
        conf("admin@a.test")
        h.start()
        failed = n.wait("failed", name)
        env = failed["env"]
        assert "serverInternal (HTTP 500): injected by the test proxy" in env["ACME_ERROR"], env
        assert env["ACME_SERIAL"] == "" and env["ACME_NOT_AFTER"] == ""  # the fallback serves
        assert failed["uid"] == www_uid()
        # The next attempt, at once: a restart with another contact (ACME02309).
        conf("other@a.test")
        mark = restart_and_wait_driver(h)
        assert h.wait_log(f"ACME01055: {name}", count=2, timeout=30), h.log_text()[-3000:]
        assert "ACME02309" in h.log_text()[mark:]
        # The driver reaped the worker and did not tell it again (said at debug level).
        assert h.wait_log(f"ACME03410: {name}: failed again", timeout=30), h.log_text()[-3000:]
        assert n.names() == [("failed", name)]
        assert not started_since(h, mark)
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def pebble_short(workdir):
    """pebble issuing certificates valid for a day (renewal is due after half of it)."""
    pb = acmetest.Pebble(os.path.join(workdir, "pebble-short"), validity=86400)
    yield pb
    pb.stop()


def test_expiring_when_less_than_the_warning_is_left(httpd_factory, pebble_short):
    """Certificates valid for a day: ACMEExpiryWarning 2d tells expiring once the certificate
    is served (and not again at the next start, within the day); a section with 1h tells
    nothing."""
    h = httpd_factory(ca=pebble_short)
    n = Notify(h)
    h.write_conf(ACCOUNT + n.directive() + "ACMEExpiryWarning 2d\n"
                 "ACMEDomain soon.test\n"
                 "<ACMEDomain later.test>\n    ACMEExpiryWarning 1h\n</ACMEDomain>\n" +
                 h.ssl_vhost("soon.test") + h.ssl_vhost("later.test"))
    h.start()
    cert = wait_real_cert(h, "soon.test")
    wait_real_cert(h, "later.test")
    expiring = n.wait("expiring", "soon.test")
    assert int(expiring["env"]["ACME_SERIAL"], 16) == cert.serial_number
    left = int(expiring["env"]["ACME_NOT_AFTER_EPOCH"]) - time.time()
    assert 0 < left < 86400
    n.wait("activated", "later.test")
    mark = restart_and_wait_driver(h)
    assert not started_since(h, mark)
    assert ("expiring", "later.test") not in n.names()
    assert n.names().count(("expiring", "soon.test")) == 1


def test_ari_changed_when_the_ca_moves_the_window(httpd_factory, pebble):
    """The CA's renewal information (chaosproxy plays it) for the served certificate: the first
    window is only recorded, and kept across a restart without asking again; when the CA is
    asked again and has moved it (as before a revocation), ari-changed with the new window."""
    proxy = ChaosProxy(pebble)
    try:
        now = datetime.datetime.now(datetime.timezone.utc)

        def window(days):
            return {"start": (now + datetime.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "end": (now + datetime.timedelta(days=days + 2)).strftime(
                        "%Y-%m-%dT%H:%M:%SZ")}
        proxy.ari = window(300)
        h = httpd_factory()
        n = Notify(h)
        name = "ari-events.test"
        h.write_conf(f"ACMECertificateAuthority {proxy.directory}\n"
                     f"ACMECACertificateFile {pebble.ca_file}\n" + ACCOUNT + n.directive() +
                     f"ACMEDomain {name}\n" + h.ssl_vhost(name), ca=False)
        h.start()
        wait_real_cert(h, name)
        n.wait("activated", name)
        assert h.wait_log(f"ACME01066: {name}", timeout=30), h.log_text()[-3000:]
        proxy.ari = window(10)
        # The answer is kept until the CA's time to ask again (the proxy sends no Retry-After:
        # an hour): a restart meanwhile asks nothing and tells nothing.
        restart_and_wait_driver(h)
        assert h.wait_log(f"ACME02314: {name}", timeout=30), h.log_text()[-3000:]
        assert h.log_text().count(f"ACME01066: {name}") == 1
        # The time to ask again has come (set back in the job file, as an hour passing would):
        # the next generation asks and sees the moved window.
        path = os.path.join(h.store, "jobs", f"{name}.json")
        with open(path) as f:
            job = json.load(f)
        assert job["ari"]["check-at"] > time.time() + 3000, job
        job["ari"]["check-at"] = int(time.time()) - 1
        with open(path, "w") as f:  # in place: the owner (the User) stays
            json.dump(job, f)
        mark = restart_and_wait_driver(h)
        assert h.wait_log(f"ACME01066: {name}", count=2, timeout=30)
        changed = n.wait("ari-changed", name)
        assert changed["env"]["ACME_ARI_START"] == proxy.ari["start"]
        assert changed["env"]["ACME_ARI_END"] == proxy.ari["end"]
        assert changed["env"]["ACME_SERIAL"]
        assert [e for e, _ in n.names()] == ["renewed", "activated", "ari-changed"]
        assert len(started_since(h, mark)) == 1
    finally:
        proxy.stop()


def test_hanging_command_is_killed_and_issuance_goes_on(httpd_factory):
    """A command that never ends is killed with its own children at ACMENotifyTimeout (also the
    one left running when the driver that started it stopped for the restart); the certificate
    comes as fast as without a command."""
    took = {}
    for mode in ("none", "hang"):
        h = httpd_factory()
        n = Notify(h)
        name = f"{mode}.test"
        h.write_conf(ACCOUNT + (n.directive("hang", "2s") if mode == "hang" else "") +
                     f"ACMEDomain {name}\n" + h.ssl_vhost(name))
        start = time.monotonic()
        h.start()
        wait_real_cert(h, name)
        took[mode] = time.monotonic() - start
        if mode == "none":
            h.stop()
    print(f"\nfirst certificate served after {took['none']:.1f} s without a command, "
          f"{took['hang']:.1f} s with one that hangs on every event")
    assert took["hang"] < took["none"] + 3, took
    renewed = n.wait("renewed", name)
    activated = n.wait("activated", name)
    assert h.wait_log(f"ACME03402: {name}: ACMENotifyCommand {n.script} activated was killed "
                      f"after 2 s (ACMENotifyTimeout)", timeout=15), h.log_text()[-3000:]
    assert "ACME03406: the renewal driver stops with 1 notify command(s) running" in \
        h.log_text()
    line = next(li for li in h.log_text().splitlines() if f"ACME03402: {name}:" in li)
    assert "the event is not told again" in line, line

    def gone(pid):
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True
    for e in (renewed, activated):
        acmetest.wait_until(lambda: gone(e["pid"]) and gone(e["child"]), 10,
                            lambda: f"{e['argv'][2]} command {e['pid']} and its child killed")
    assert n.names() == [("renewed", name), ("activated", name)]


def test_at_most_four_commands_at_once(httpd_factory):
    """Six certificates, a command that hangs for its 2 s on each event: at most four run at
    once; the two others wait for a free place and run then."""
    h = httpd_factory()
    n = Notify(h)
    names = [f"busy{k}.test" for k in range(6)]
    h.write_conf(ACCOUNT + n.directive("hang", "2s") +
                 "".join(f"ACMEDomain {nm}\n" + h.ssl_vhost(nm) for nm in names))
    h.start()
    for nm in names:
        wait_real_cert(h, nm)
    for nm in names:
        n.wait("activated", nm, timeout=60)
    assert h.wait_log("was killed after 2 s (ACMENotifyTimeout)", count=6, timeout=30)
    # The account of the driver that told "activated", in its order: started (ACME03400) and
    # ended (ACME03401/2). ("renewed" was told by the generation before; a driver that stops
    # starts what waits, and leaves them to finish.)
    seen = [" ".join(m.groups()) for m in
            re.finditer(r"ACME(0340[0-2]): (\S+): ACMENotifyCommand \S+ activated", h.log_text())]
    running, most, waited = 0, 0, 0
    for line in seen:
        if line.startswith("03400 "):
            running += 1
            waited += most == 4  # started once a place was free again
        else:
            running -= 1
        most = max(most, running)
        assert running <= 4, seen
    assert most == 4 and waited == 2, (most, waited, seen)


def test_failing_command_is_logged_once(httpd_factory):
    """A command that exits with an error: logged with the domain, the event, the exit code and
    its output, and never run again for that event."""
    h = httpd_factory()
    n = Notify(h)
    name = "sad.test"
    h.write_conf(ACCOUNT + n.directive("fail") + f"ACMEDomain {name}\n" + h.ssl_vhost(name))
    h.start()
    wait_real_cert(h, name)
    n.wait("activated", name)
    assert h.wait_log(f"ACME03402: {name}: ACMENotifyCommand {n.script} activated exited with 3")
    line = next(li for li in h.log_text().splitlines()
                if f"ACME03402: {name}:" in li and " activated " in li)
    assert "its output: mail server said no; the event is not told again" in line, line
    mark = restart_and_wait_driver(h)
    assert not started_since(h, mark)
    assert n.names().count(("activated", name)) == 1


def test_a_sections_own_command(httpd_factory):
    """A command in an <ACMEDomain> section is that certificate's; the global one serves the
    others; a certificate in a section without its own uses the global one."""
    h = httpd_factory()
    glob, own = Notify(h, "global"), Notify(h, "own")
    section = "".join("    " + li + "\n" for li in own.directive().splitlines())
    h.write_conf(ACCOUNT + glob.directive() + f"<ACMEDomain own.test>\n{section}</ACMEDomain>\n"
                 "<ACMEDomain inherit.test>\n    ACMEKeyType ec384\n</ACMEDomain>\n"
                 "ACMEDomain plain.test\n" + h.ssl_vhost("own.test") +
                 h.ssl_vhost("inherit.test") + h.ssl_vhost("plain.test"))
    h.start()
    for name in ("own.test", "inherit.test", "plain.test"):
        wait_real_cert(h, name)
    own.wait("activated", "own.test")
    glob.wait("activated", "plain.test")
    inherit = glob.wait("activated", "inherit.test")
    assert inherit["env"]["ACME_KEY_TYPE"] == "ec384"
    assert {nm for _, nm in own.names()} == {"own.test"}
    assert {nm for _, nm in glob.names()} == {"plain.test", "inherit.test"}


CONFIG_ERRORS = [
    ("ACMENotifyCommand notify.sh\n", "ACMENotifyCommand notify.sh: expected an absolute path"),
    ("ACMENotifyCommand /nonexistent/notify\n",
     "ACMENotifyCommand /nonexistent/notify: no such file"),
    ("ACMENotifyCommand /etc/passwd\n", "ACMENotifyCommand /etc/passwd: not executable"),
    ("ACMENotifyCommand\n", "ACMENotifyCommand needs a program"),
    ("ACMENotifyTimeout 10%\n", "ACMENotifyTimeout 10%: expected a duration"),
    ("ACMENotifyTimeout 2d\n", "ACMENotifyTimeout 2d: expected a duration of at most 1 day "),
    ("ACMEExpiryWarning soon\n", "ACMEExpiryWarning soon: expected a duration"),
    ("ACMEExpiryWarning 7d\nACMEExpiryWarning 8d\n", "ACMEExpiryWarning is duplicate"),
    ("<VirtualHost *:1>\nACMENotifyTimeout 5s\n</VirtualHost>\n", "ACMENotifyTimeout"),
]


@pytest.mark.parametrize("conf,message", CONFIG_ERRORS,
                         ids=[c[1].split(":")[0].replace(" ", "-") + f"-{i}"
                              for i, c in enumerate(CONFIG_ERRORS)])
def test_configtest_names_the_mistake(httpd_factory, conf, message):
    h = httpd_factory()
    h.write_conf(ACCOUNT + conf + "ACMEDomain conf.test\n")
    r = h.configtest()
    assert r.returncode != 0 and message in r.stdout + r.stderr, r.stdout + r.stderr


def test_configtest_accepts_the_directives(httpd_factory):
    h = httpd_factory()
    n = Notify(h)
    h.write_conf(ACCOUNT + n.directive(timeout="90s") + "ACMEExpiryWarning 14d\n"
                 "<ACMEDomain conf.test>\n    ACMENotifyCommand /bin/true\n"
                 "    ACMEExpiryWarning 12h\n    ACMENotifyTimeout 5m\n</ACMEDomain>\n")
    r = h.configtest()
    assert r.returncode == 0, r.stdout + r.stderr
