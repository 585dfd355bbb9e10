"""Debian-native: `make install` gives a2enmod what it needs, and `dpkg-buildpackage -us -uc -b`
builds libapache2-mod-acme, whose contents, lintian report and module are checked.

Nothing is installed on this machine: a2enmod and `apache2ctl configtest` run against a copy of
/etc/apache2 (APACHE_CONFDIR, APACHE_STATE_DIRECTORY), and the packaged module runs with a
private /var/lib/apache2 (a mount namespace, so its default store lands in a test folder). The
real `apt install` on a fresh Debian 12 is tests/debian/fresh-install (docs/debian.md)."""
import os
import re
import shutil
import subprocess

import pytest

import acmetest

BUILDDIR = os.environ.get("top_builddir") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
A2ENMOD = "/usr/sbin/a2enmod"
APACHE2CTL = "/usr/sbin/apache2ctl"
DEBIAN_STORE = "/var/lib/apache2/acme"
ACCOUNT = "ACMEContactEmail admin@a.test\nACMEAgreement accepted\n"


def makefile_value(name):
    """A variable as configure wrote it into the Makefile."""
    with open(os.path.join(BUILDDIR, "Makefile")) as f:
        for line in f:
            if line.startswith(name + " = "):
                return line.split(" = ", 1)[1].strip()
    return None


def clean_env(**extra):
    """The environment without what `make check` exports (MAKEFLAGS would hand the outer make's
    jobserver to the package build)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "top_builddir",
                        "top_srcdir", "DESTDIR")}
    env.update(extra)
    return env


def need_debian_apache():
    for path in (A2ENMOD, APACHE2CTL, "/etc/apache2/apache2.conf"):
        if not os.path.exists(path):
            pytest.skip(f"{path} is missing: Debian's apache2 package is not installed")


def confdir_copy(tmp_path, load, conf, module):
    """A copy of /etc/apache2 as a fresh install has it (no ssl, socache_shmcb or acme
    enabled), with acme.load (loading `module`) and acme.conf in mods-available; its run, lock
    and log folders below tmp_path. Returns (confdir, environment for a2enmod/apache2ctl)."""
    confdir = str(tmp_path / "etc-apache2")
    shutil.copytree("/etc/apache2", confdir, symlinks=True)
    for d in ("mods-enabled", "mods-available"):
        for f in os.listdir(os.path.join(confdir, d)):
            if d == "mods-available" and not f.startswith("acme."):
                continue
            if re.match(r"(acme|ssl|socache_shmcb)\.(load|conf)$", f):
                os.unlink(os.path.join(confdir, d, f))
    with open(load) as f:
        text = f.read()
    with open(os.path.join(confdir, "mods-available", "acme.load"), "w") as f:
        f.write(re.sub(r"(?m)^LoadModule acme_module .*$", f"LoadModule acme_module {module}",
                       text))
    shutil.copy(conf, os.path.join(confdir, "mods-available", "acme.conf"))
    dirs = {}
    for name in ("run", "lock", "log", "state"):
        dirs[name] = str(tmp_path / name)
        os.makedirs(dirs[name], exist_ok=True)
    os.makedirs(os.path.join(dirs["run"], "socks"), exist_ok=True)
    with open(os.path.join(confdir, "envvars"), "a") as f:
        f.write(f"\nexport APACHE_RUN_DIR={dirs['run']}\nexport APACHE_LOCK_DIR={dirs['lock']}\n"
                f"export APACHE_LOG_DIR={dirs['log']}\n"
                f"export APACHE_PID_FILE={dirs['run']}/apache2.pid\n")
    env = clean_env(APACHE_CONFDIR=confdir, APACHE_STATE_DIRECTORY=dirs["state"])
    return confdir, env


def a2enmod_acme_then_configtest(tmp_path, load, conf, module):
    """What the operator does: a2enmod acme, a site with an ACMEDomain, apache2ctl configtest.
    Asserts that a2enmod enabled ssl and socache_shmcb with acme and that the configuration
    passes; returns the output of both."""
    confdir, env = confdir_copy(tmp_path, load, conf, module)
    r = subprocess.run([A2ENMOD, "acme"], capture_output=True, text=True, env=env, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    enabled = os.listdir(os.path.join(confdir, "mods-enabled"))
    for f in ("acme.load", "acme.conf", "ssl.load", "ssl.conf", "socache_shmcb.load"):
        assert f in enabled, f"a2enmod acme did not enable {f}:\n{out}"
    assert "Enabling module acme" in out, out
    # A site that needs all three: an ACMEDomain (its challenge cache is socache_shmcb) served
    # by a TLS vhost (mod_ssl), with no certificate of its own.
    store = tmp_path / "store"
    with open(os.path.join(confdir, "sites-enabled", "acme-test.conf"), "w") as f:
        f.write(f"{ACCOUNT}ACMEStoreDir {store}\nACMEDomain site.test\n"
                "<VirtualHost *:443>\n    ServerName site.test\n    SSLEngine on\n"
                "</VirtualHost>\n")
    t = subprocess.run([APACHE2CTL, "configtest"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert t.returncode == 0 and "Syntax OK" in t.stderr, t.stdout + t.stderr
    return out, t.stderr


def test_make_install_gives_a2enmod_acme(tmp_path):
    """`make install` puts acme.load (with the modules it depends on) and a commented acme.conf
    into mods-available, and `a2enmod acme` then enables a configuration that passes."""
    need_debian_apache()
    modsconfdir = makefile_value("HTTPD_MODSCONFDIR")
    if not modsconfdir or modsconfdir == "no":
        pytest.skip("configure found no mods-available (not Debian's layout): make install "
                    "installs no acme.load")
    dest = str(tmp_path / "dest")
    r = subprocess.run(["make", "-s", "install", f"DESTDIR={dest}"], cwd=BUILDDIR,
                       capture_output=True, text=True, env=clean_env(), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    avail = dest + modsconfdir
    moddir = makefile_value("HTTPD_LIBEXECDIR")
    load = os.path.join(avail, "acme.load")
    conf = os.path.join(avail, "acme.conf")
    with open(load) as f:
        text = f.read()
    # a2enmod reads "# Depends:" among the comment lines before the first directive.
    assert text.startswith("# Depends: ssl socache_shmcb\n"), text
    assert f"LoadModule acme_module {moddir}/mod_acme.so\n" in text, text
    assert os.path.isfile(dest + moddir + "/mod_acme.so")
    assert not os.path.exists(dest + moddir + "/mod_acme.la")
    with open(conf) as f:
        conf_text = f.read()
    # A starting point: every directive is commented out, the platform's commands are named.
    assert not re.search(r"(?m)^\s*ACME", conf_text), conf_text
    assert os.environ.get("ACME_RESTART_COMMAND", "apachectl graceful") in conf_text
    # An operator's acme.conf is kept by the next make install.
    with open(conf, "a") as f:
        f.write("# edited by the operator\n")
    r = subprocess.run(["make", "-s", "install", f"DESTDIR={dest}"], cwd=BUILDDIR,
                       capture_output=True, text=True, env=clean_env(), timeout=600)
    assert r.returncode == 0 and "acme.conf exists: kept" in r.stdout, r.stdout + r.stderr
    with open(conf) as f:
        assert f.read().endswith("# edited by the operator\n")
    a2enmod_acme_then_configtest(tmp_path, load, conf, dest + moddir + "/mod_acme.so")
    # make uninstall takes what it installed, and leaves the operator's acme.conf.
    r = subprocess.run(["make", "-s", "uninstall", f"DESTDIR={dest}"], cwd=BUILDDIR,
                       capture_output=True, text=True, env=clean_env(), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(os.listdir(avail)) == ["acme.conf"], os.listdir(avail)
    assert not os.path.exists(dest + moddir + "/mod_acme.so")


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """libapache2-mod-acme built with `dpkg-buildpackage -us -uc -b` from the tree `make distdir`
    gives (what the release tarball holds), in a temporary folder. Returns the folder."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the package's module runs under apache2 as root with a private "
                    "/var/lib/apache2 (CI runs as root)")
    for tool in ("dpkg-buildpackage", "dh", "dh_apache2", "dpkg-deb"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is missing (Debian packages dpkg-dev, debhelper, apache2-dev)")
    need_debian_apache()
    top = tmp_path_factory.mktemp("deb")
    version = makefile_value("VERSION")
    src = top / f"mod_acme-{version}"
    r = subprocess.run(["make", "-s", "distdir", f"distdir={src}"], cwd=BUILDDIR,
                       capture_output=True, text=True, env=clean_env(), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["nice", "dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src,
                       capture_output=True, text=True, env=clean_env(), timeout=3000)
    (top / "build.log").write_text(r.stdout + r.stderr)
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    # dh_auto_test ran the unit tier (debian/rules), and passed it.
    assert re.search(r"# PASS: +[1-9]", r.stdout), r.stdout[-6000:]
    x = top / "x"
    subprocess.run(["dpkg-deb", "-x", deb_path(top), str(x)], check=True)
    return top


def deb_path(top):
    debs = [f for f in os.listdir(top) if re.match(r"libapache2-mod-acme_.*\.deb$", f)]
    assert len(debs) == 1, os.listdir(top)
    return str(top / debs[0])


class PackagedHttpd(acmetest.Httpd):
    """The packaged module in Debian's apache2, with no ACMEStoreDir (so its default store), in
    a mount namespace where /var/lib/apache2 is a test folder: the host's stays untouched."""

    def __init__(self, root, pebble, module, varlib):
        super().__init__(root, pebble)
        self.module = module
        self.varlib = varlib
        self.store = os.path.join(varlib, os.path.basename(DEBIAN_STORE))

    def base_conf(self, extra_modules=(), ca=True, plain=True):
        lines = super().base_conf(extra_modules, ca, plain).splitlines()
        lines = [f"LoadModule acme_module {self.module}" if l.startswith("LoadModule acme_module")
                 else l for l in lines if not l.startswith("ACMEStoreDir ")]
        return "\n".join(lines) + "\n"

    def run(self, *args):
        script = 'mount --bind "$1" /var/lib/apache2 && shift && exec "$@"'
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            script, "sh", self.varlib, acmetest.HTTPD_BIN, "-d", self.root,
                            "-f", self.conf_path, *args],
                           capture_output=True, text=True, timeout=60)
        if "cannot change root filesystem propagation" in r.stderr:
            # A chroot whose / is no mount point (a throwaway build root) cannot have a private
            # mount namespace; without one the store would land in the machine's own
            # /var/lib/apache2. The package was built and checked up to here.
            pytest.skip("running the packaged module needs a private mount namespace, which "
                        f"this root cannot make ({r.stderr.strip()}); tests/debian/fresh-install "
                        "runs it on a throwaway machine instead")
        return r


@pytest.mark.slow(300)
def test_debian_package(package, workdir, pebble, tmp_path):
    """The package holds the module, acme.load and acme.conf as conffiles and the docs; depends
    on the apache2 API; is lintian clean; a2enmod acme works with it; and its module keeps the
    store in /var/lib/apache2/acme and names apache2ctl in its messages."""
    deb = deb_path(package)
    r = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True)
    files = {line.split()[-1].lstrip(".") for line in r.stdout.splitlines()}
    for f in ("/usr/lib/apache2/modules/mod_acme.so",
              "/etc/apache2/mods-available/acme.load",
              "/etc/apache2/mods-available/acme.conf",
              "/usr/share/doc/libapache2-mod-acme/README.Debian",
              "/usr/share/doc/libapache2-mod-acme/README.md.gz",
              "/usr/share/doc/libapache2-mod-acme/copyright",
              "/usr/share/doc/libapache2-mod-acme/changelog.gz",
              "/usr/share/doc/libapache2-mod-acme/examples/reference.conf",
              "/usr/sbin/acmectl", "/usr/share/man/man8/acmectl.8.gz",
              "/usr/share/doc/libapache2-mod-acme/acmectl.md.gz"):
        assert f in files, f"{f} is not in the package:\n{r.stdout}"
    assert not [f for f in files if f.endswith(".la")], r.stdout
    # The store is made by the module at its first start; purge removes it (postrm).
    assert not [f for f in files if f.startswith(DEBIAN_STORE)], r.stdout
    ctl = package / "control"
    subprocess.run(["dpkg-deb", "-e", deb, str(ctl)], check=True)
    conffiles = (ctl / "conffiles").read_text().split()
    assert conffiles == ["/etc/apache2/mods-available/acme.conf",
                         "/etc/apache2/mods-available/acme.load"], conffiles
    depends = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True, text=True,
                             check=True).stdout
    assert "apache2-api-" in depends and "ca-certificates" in depends, depends
    # Not enabled on install (no postinst), disabled on remove (prerm), store gone on purge.
    assert not (ctl / "postinst").exists()
    assert "apache2_invoke dismod" in (ctl / "prerm").read_text()
    assert f"rm -rf {DEBIAN_STORE}" in (ctl / "postrm").read_text()

    if shutil.which("lintian"):
        r = subprocess.run(["lintian", "-I", "-E", "--pedantic", deb], capture_output=True,
                           text=True, timeout=600)
        tags = [line for line in (r.stdout + r.stderr).splitlines()
                if re.match(r"^[EWIPX]: ", line)]
        assert not tags, "lintian: " + "\n".join(tags)

    x = package / "x"
    # The packaged acmectl knows Debian's store without --store.
    r = subprocess.run([str(x / "usr/sbin/acmectl"), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and f"(default: {DEBIAN_STORE})" in r.stdout, r.stdout + r.stderr
    module = str(x / "usr/lib/apache2/modules/mod_acme.so")
    a2enmod_acme_then_configtest(tmp_path, str(x / "etc/apache2/mods-available/acme.load"),
                                 str(x / "etc/apache2/mods-available/acme.conf"), module)

    # The packaged module, with no ACMEStoreDir, against pebble: the store is Debian's, and with
    # ACMEAutoRestart off the log names Debian's command.
    varlib = acmetest.public_dir(workdir, "debian-var-lib-apache2")
    root = os.path.join(acmetest.public_dir(workdir, "httpd"), "debian-package")
    h = PackagedHttpd(root, pebble, module, varlib)
    h.write_conf(ACCOUNT + "ACMEAutoRestart off\nACMEDomain deb.test\n" + h.ssl_vhost("deb.test"))
    try:
        h.start()
        assert h.wait_log("ACME01054: deb.test"), h.log_text()[-3000:]
        assert "run 'apache2ctl graceful' to activate it" in h.log_text()
        assert os.path.isdir(os.path.join(h.store, "staging", "deb.test"))
        assert not os.path.exists(os.path.join(root, "acme")), "the store is not ServerRoot's"
    finally:
        h.stop()
    assert not h.processes()
    assert not h.unexpected_errors(), h.unexpected_errors()
