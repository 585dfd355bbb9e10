"""The parent's automatic restart: not in one-process mode (-X), its configtest runs the
server's own binary with the server's own command line, and it restarts only for staged
certificates that pass validation, whatever the User plants in staging/."""
import datetime
import json
import os
import pwd
import re
import signal
import stat
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import acmetest
from test_httpd import ACCOUNT, issuer_is_self, wait_real_cert


def start_with(h, *args, env=None):
    """Httpd.start with more command-line arguments and another environment."""
    acmetest.check_port_free(h.http_port, "httpd http")
    acmetest.check_port_free(h.https_port, "httpd https")
    r = subprocess.run([acmetest.HTTPD_BIN, "-d", h.root, "-f", h.conf_path, *args,
                        "-k", "start"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stdout + r.stderr + h.log_text()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not h.pid():
        time.sleep(0.05)
    assert h.pid(), h.log_text()
    acmetest.wait_port(h.https_port, acmetest._PidProc(h.pid()), "httpd")
    return h.pid()


class OneProcess:
    """httpd -X in the foreground, as a child of the test, stopped by its PID."""

    def __init__(self, h):
        self.h = h
        acmetest.check_port_free(h.http_port, "httpd http")
        acmetest.check_port_free(h.https_port, "httpd https")
        self.out = open(os.path.join(h.root, "foreground.out"), "ab")
        self.proc = subprocess.Popen([acmetest.HTTPD_BIN, "-d", h.root, "-f", h.conf_path, "-X"],
                                     stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        acmetest.wait_port(h.https_port, self.proc, "httpd -X")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)
        self.out.close()


def www_data():
    if os.geteuid() != 0:
        pytest.skip("needs root: the server runs with User www-data and the test plants files "
                    "as www-data")
    return pwd.getpwnam("www-data")


def as_www(argv):
    """Runs argv as www-data, as a CGI or PHP script of the server would."""
    www = www_data()

    def become():
        os.setgid(www.pw_gid)
        os.setgroups([])
        os.setuid(www.pw_uid)

    r = subprocess.run(argv, preexec_fn=become, capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_one_process_mode_stages_and_keeps_running(httpd_factory, mpm):
    """httpd -X has no restart handler: SIGUSR1 would end it. The certificate is staged, the
    server keeps serving, the log says how to activate it, and the next start does."""
    h = httpd_factory(mpm=mpm)
    h.write_conf(ACCOUNT + "ACMEDomain x.test\n" + h.ssl_vhost("x.test"))
    one = OneProcess(h)
    try:
        assert h.wait_log("ACME01054: x.test", timeout=30), h.log_text()[-3000:]
        flag = os.path.join(h.store, "staging", "restart.wanted")
        # Before the fix the parent's thread ran configtest and sent itself SIGUSR1 within a
        # second of the flag, which ends a one-process server. There is no event for "nothing
        # happens": give it well over that time.
        try:
            one.proc.wait(timeout=4)
        except subprocess.TimeoutExpired:
            pass
        assert one.proc.poll() is None, f"httpd -X exited:\n{h.log_text()[-3000:]}"
        assert not os.path.exists(flag), "nobody would act on a restart flag in -X"
        assert "ACME01059" not in h.log_text()
        assert "ACME01070" not in h.log_text()
        assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "x.test"))
        # The log says so at start and when the certificate is ready.
        log = h.log_text()
        assert "ACME02200" in log and "stop the server and start it again" in log, log[-3000:]
        obtained = [l for l in log.splitlines() if "ACME01054: x.test" in l][0]
        assert "stop the server and start it again" in obtained, obtained
    finally:
        one.stop()
    # What the log said: stopping and starting activates it.
    one = OneProcess(h)
    try:
        cert = wait_real_cert(h, "x.test", timeout=15)
        assert acmetest.san_names(cert) == ["x.test"]
        assert "ACME01020: x.test: new certificate activated" in h.log_text()
    finally:
        one.stop()


def test_configtest_uses_the_servers_binary_and_command_line(httpd_factory, tmp_path):
    """The server needs -D SOMEDEF and a -C directive from its command line, and PATH starts
    with another 'apache2' (that would fail the test): the automatic restart still happens."""
    h = httpd_factory()
    ssl_load = f"LoadModule ssl_module {acmetest.MODULES_DIR}/mod_ssl.so"
    h.write_conf("<IfDefine !SOMEDEF>\n    Error \"start with -D SOMEDEF\"\n</IfDefine>\n" +
                 ACCOUNT + "ACMEDomain cmd.test\n" + h.ssl_vhost("cmd.test"))
    with open(h.conf_path) as f:
        conf = f.read()
    assert ssl_load in conf
    with open(h.conf_path, "w") as f:
        f.write(conf.replace(ssl_load + "\n", ""))
    # Without them, the configuration does not pass (what the old configtest ran).
    r = h.configtest()
    assert r.returncode != 0
    trap_dir = tmp_path / "trap"
    trap_dir.mkdir()
    marker = tmp_path / "trap-ran"
    trap = trap_dir / "apache2"
    trap.write_text(f"#!/bin/sh\necho \"$@\" > {marker}\nexit 1\n")
    trap.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{trap_dir}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    start_with(h, "-D", "SOMEDEF", "-C", ssl_load, env=env)
    cert = wait_real_cert(h, "cmd.test")
    assert acmetest.san_names(cert) == ["cmd.test"]
    log = h.log_text()
    assert "ACME01070" in log and "ACME01072" not in log
    assert not marker.exists(), f"the configtest ran {trap}: {marker.read_text()}"


def make_set(dirpath, name, uid, gid):
    """A self-signed key and certificate for name in dirpath, owned by uid: what a program
    running as the User could stage."""
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    os.makedirs(dirpath)
    with open(os.path.join(dirpath, "privkey.pem"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(os.path.join(dirpath, "fullchain.pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    for p in (dirpath, *(os.path.join(dirpath, n) for n in os.listdir(dirpath))):
        os.chown(p, uid, gid)


def start_idle(h, name):
    """A server whose driver waits (a job with the next attempt in an hour): nothing but what
    the test plants can ask for a restart."""
    h.write_conf(ACCOUNT + f"ACMEDomain {name}\n" + h.ssl_vhost(name))
    os.makedirs(os.path.join(h.store, "jobs"), exist_ok=True)
    with open(os.path.join(h.store, "jobs", f"{name}.json"), "w") as f:
        json.dump({"failures": 0, "next-run": int(time.time()) + 3600}, f)
    return h.start()


@pytest.mark.parametrize("plant", ["flag", "flag-and-bad-set", "symlink"])
def test_planted_restart_flag_does_not_restart(httpd_factory, tmp_path, plant):
    """Anything running as the User can write staging/. A flag without a staged set that
    passes validation is removed and logged, and the server does not restart; a symlink is
    removed, never followed."""
    www = www_data()
    h = httpd_factory()
    pid = start_idle(h, "plant.test")
    assert h.wait_log("resuming normal operations", timeout=10), h.log_text()[-3000:]
    staging = os.path.join(h.store, "staging")
    flag = os.path.join(staging, "restart.wanted")
    target = tmp_path / "target"
    if plant == "symlink":
        target.write_text("a file the parent must not follow\n")
        target.chmod(0o644)
        as_www(["ln", "-s", str(target), flag])
        why = "ACME02211"
    else:
        if plant == "flag-and-bad-set":
            # Self-signed for another name: the parent's validation refuses it.
            make_set(os.path.join(staging, "plant.test"), "other.test", www.pw_uid, www.pw_gid)
        as_www(["sh", "-c", f"echo ' plant.test' > {flag}"])
        why = "ACME02212"
    assert h.wait_log(why, timeout=10), h.log_text()[-3000:]
    line = [l for l in h.log_text().splitlines() if why in l][0]
    assert flag in line
    if plant == "flag-and-bad-set":
        assert "staging/plant.test" in line, line
    log = h.log_text()
    assert "ACME01070" not in log and "AH00493" not in log, "no graceful restart"
    assert h.pid() == pid
    assert not os.path.lexists(flag), "the planted flag is removed"
    if plant == "symlink":
        assert target.read_text() == "a file the parent must not follow\n"
    assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "plant.test"))


def test_stop_while_the_configtest_hangs(httpd_factory, tmp_path):
    """A configuration that makes 'httpd -t' hang (an Include of a FIFO nobody writes, as a
    file on a dead network mount would) must not hold up the server's stop: the parent's
    restart thread gives the test up and is joined."""
    h = httpd_factory()
    h.write_conf(ACCOUNT + "ACMEDomain hang.test\n" + h.ssl_vhost("hang.test"))
    fifo = os.path.join(h.root, "hang.conf")
    os.mkfifo(fifo)
    h.start()
    with open(h.conf_path, "a") as f:
        f.write(f"\nInclude {fifo}\n")

    def configtests():
        out = []
        for p in h.processes():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    if b"-t" in f.read().split(b"\0"):
                        out.append(p)
            except OSError:
                pass
        return out

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not configtests():
        time.sleep(0.05)
    hung = configtests()
    assert hung, "the restart thread ran httpd -t\n" + h.log_text()[-3000:]
    try:
        t0 = time.monotonic()
        h.stop()
        left = h.processes()
        assert not left, f"processes left {time.monotonic() - t0:.1f} s after SIGTERM: {left}"
    finally:
        # Before the fix: release the hung test and whatever waited on it.
        if h.processes():
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
            for p in h.processes():
                os.kill(p, signal.SIGKILL)


def test_the_parent_is_woken_when_the_flag_is_written(httpd_factory):
    """On Linux the restart thread sleeps on inotify until the driver writes the restart flag
    after staging (ACME02214), instead of looking for it every 50 ms; the certificate is then
    activated and served as before, and the flag is gone."""
    h = httpd_factory()
    name = "woken.test"
    h.write_conf(ACCOUNT + f"ACMEDomain {name}\n" + h.ssl_vhost(name))
    h.start()
    wait_real_cert(h, name)
    log = h.log_text()
    assert "ACME02215" not in log, log[-3000:]
    flag = os.path.join(h.store, "staging", "restart.wanted")
    woken = [l for l in log.splitlines() if "ACME02214" in l]
    assert woken and f"{flag} was written" in woken[0], log[-3000:]
    restarted = [i for i, l in enumerate(log.splitlines()) if "ACME01070" in l]
    assert restarted and log.splitlines().index(woken[0]) < restarted[0]
    assert not os.path.lexists(flag)


def test_restart_hold_follows_the_configuration_pass(httpd_factory, tmp_path):
    """The driver knows how long the server's configuration pass takes, every module's part
    included (here mod_ssl running a program for its random seed that takes 2 s, at the start and
    again at each graceful restart), and a first certificate's restart waits for running orders
    at most four times that, never less than a minute (ACME02315; docs/apache.md
    "Activation")."""
    seed = tmp_path / "seed.sh"
    seed.write_text("#!/bin/sh\nsleep 2\nhead -c 32 /dev/urandom\n")
    seed.chmod(0o755)
    h = httpd_factory()
    h.write_conf(ACCOUNT + f"SSLRandomSeed startup exec:{seed} 32\nACMEDomain hold.test\n"
                 + h.ssl_vhost("hold.test"))
    h.start()

    def passes():
        return [tuple(int(v) for v in m.groups()) for m in re.finditer(
            r"ACME02315: the server's configuration pass took (\d+) ms: a new certificate waits "
            r"at most (\d+) s", h.log_text())]

    assert h.wait_log("ACME02315", timeout=30), h.log_text()[-3000:]
    wait_real_cert(h, "hold.test")
    h.graceful()
    assert h.wait_log("ACME02315", count=3, timeout=30), h.log_text()[-3000:]
    for pass_ms, hold_s in passes():
        assert 2000 <= pass_ms < 30000, passes()
        assert hold_s == max(60, 4 * pass_ms // 1000), passes()


def test_a_restart_for_many_certificates_names_twenty_in_the_log(httpd_factory):
    """httpd cuts an error log line at 8 KB: a restart for thousands of certificates logs the
    first twenty names and how many more (ACME01059, ACME01070); the flag names them all."""
    names = [f"n{i:02d}.many.test" for i in range(23)]
    h = httpd_factory()
    h.write_conf(ACCOUNT + "".join(f"ACMEDomain {n}\n" for n in names)
                 + "".join(h.ssl_vhost(n) for n in names))
    h.start()
    assert h.wait_log("ACME01070", timeout=60), h.log_text()[-3000:]
    for n in names:
        wait_real_cert(h, n)
    for code in ("ACME01059", "ACME01070"):
        lines = [li for li in h.log_text().splitlines() if f"{code}: new certificates" in li]
        assert lines, code
        for li in lines:
            listed = re.findall(r"n\d\d\.many\.test", li)
            more = re.search(r" and (\d+) more;", li)
            assert len(listed) <= 20, li
            # Each line accounts for every set it is about: those named and those counted.
            assert len(listed) + (int(more.group(1)) if more else 0) <= len(names), li
        assert any(re.search(r"many\.test and \d+ more;", li) for li in lines), lines
