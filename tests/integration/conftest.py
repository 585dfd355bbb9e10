"""pytest fixtures: builds are taken from top_builddir; pebble runs once per session."""
import os
import shutil
import tempfile

import pytest

import acmetest

BUILDDIR = os.environ.get("top_builddir") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="mod_acme-it-")
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
