"""pytest fixtures: builds are taken from top_builddir; pebble runs once per session, that is
once per pytest-xdist worker when the tier runs in parallel (`-n`): each worker has its own
pebble, ports, folders and servers, so tests never share them."""
import os
import shutil
import tempfile

import pytest

import acmetest

BUILDDIR = os.environ.get("top_builddir") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))

# In a sanitizer build acme-drive carries the sanitizers itself: make UBSan's reports fatal, as
# ASan's are, so that a report fails the test that ran it.
os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow(seconds): runs for a minute or more; scheduled "
                                       "first, longest first, so that parallel workers do not "
                                       "wait for it at the end")


def pytest_collection_modifyitems(config, items):
    """Slow tests first, longest first (a stable sort: the same order in every xdist worker,
    as xdist requires)."""
    def key(item):
        mark = item.get_closest_marker("slow")
        return -(mark.args[0] if mark and mark.args else 60 if mark else 0)
    items.sort(key=key)


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="mod_acme-it-")
    os.chmod(d, 0o755)  # httpd's User must reach the stores below
    yield d
    if os.environ.get("KEEP_TEST_DIRS") != "1":
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def pebble_always_valid(workdir):
    """pebble with PEBBLE_VA_ALWAYS_VALID=1 (no challenge server needed) and its default 5%
    nonce rejection and 50% authorization reuse left on."""
    for tool in ("pebble", "pebble-challtestsrv", "openssl"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed (Debian package: "
                        f"{'openssl' if tool == 'openssl' else 'pebble'})")
    pb = acmetest.Pebble(os.path.join(workdir, "pebble-av"), always_valid=True)
    yield pb
    pb.stop()


@pytest.fixture
def drive_bin():
    path = os.path.join(BUILDDIR, "tests", "integration", "acme-drive")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built: run make check")
    return path


@pytest.fixture(scope="session")
def pebble(workdir):
    """pebble validating for real: http-01 requests go to httpd on pebble.http_port."""
    pb = acmetest.Pebble(os.path.join(workdir, "pebble"))
    yield pb
    pb.stop()


@pytest.fixture(scope="session")
def pebble_tls_only(workdir):
    """pebble validating for real, with its httpPort on a port nothing ever listens on: only
    tls-alpn-01 (on pebble.tls_port, the server's TLS port) can succeed."""
    pb = acmetest.Pebble(os.path.join(workdir, "pebble-tls-only"))
    yield pb
    pb.stop()


# The MAC keys pebble_eab knows, by key ID (base64url, as a CA hands them out).
EAB_KEYS = {"kid-1": "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"}


@pytest.fixture(scope="session")
def pebble_eab(workdir):
    """pebble validating for real that requires an external account binding with one of
    EAB_KEYS. Servers made with httpd_factory(ca=pebble_eab) use it. No nonce is rejected, so
    that the tests can count newAccount requests (a badNonce retry would be a second one)."""
    pb = acmetest.Pebble(os.path.join(workdir, "pebble-eab"), eab_keys=EAB_KEYS,
                         env_extra={"PEBBLE_WFE_NONCEREJECT": "0"})
    yield pb
    pb.stop()


@pytest.fixture(autouse=True)
def no_sanitizer_reports():
    """With a sanitizer build (./configure --enable-sanitizers), a test fails when any server it
    started wrote a report (ASan, LeakSanitizer, UBSan); runs after the servers are stopped."""
    first = len(acmetest.Httpd.made)
    yield
    reports = []
    for h in acmetest.Httpd.made[first:]:
        reports += h.sanitizer_reports()
    assert not reports, "sanitizer reports:\n" + "\n".join(
        f"=== {path}\n{text}" for path, text in reports)


_serial = [0]  # one server folder per Httpd in the whole session


@pytest.fixture
def httpd_factory(workdir, pebble, request):
    """Makes Httpd instances for a test; at teardown stops them (by PID) and fails the test on
    [error] lines it did not expect (a test lists expected ones in httpd.allowed_errors)."""
    made = []
    if not os.access(acmetest.module_path(), os.R_OK):
        pytest.fail(f"{acmetest.module_path()} is not built: run make")

    def make(mpm="event", ca=None, **kw):
        """ca: another acmetest.Pebble than the session's (the server listens on its ports)."""
        _serial[0] += 1
        name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
        root = os.path.join(acmetest.public_dir(workdir, "httpd"), f"{_serial[0]:03d}-{name}")
        h = acmetest.Httpd(root, ca or pebble, mpm=mpm, **kw)
        h.allowed_errors = []
        made.append(h)
        return h

    yield make
    errors = []
    for h in made:
        h.stop()
        errors += h.unexpected_errors(h.allowed_errors)
        leftovers = h.processes()
        assert not leftovers, f"httpd children left running: {leftovers}"
    assert not errors, "unexpected error lines in the server log:\n" + "\n".join(errors)
