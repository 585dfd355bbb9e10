"""The core library against the real pebble, through the acme-drive test driver."""
import os
import stat
import subprocess

import acmetest


def drive(drive_bin, pebble, store, names, *extra, timeout=120):
    argv = [drive_bin, "-d", pebble.directory, "-c", pebble.ca_file, "-s", store,
            "-e", "admin@example.test", "-a", *extra, *names]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    out = dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)
    return r, out


def assert_served_chain_ok(out, pebble, names, tmp_path):
    ok, msg = acmetest.verify_chain(out["fullchain"], pebble.root_pem(), str(tmp_path))
    assert ok, f"chain does not verify against pebble's root: {msg}"
    leaf = acmetest.split_pem_chain(open(out["fullchain"], "rb").read())[0]
    assert sorted(acmetest.san_names(leaf)) == sorted(names)


def test_first_certificate(drive_bin, pebble_always_valid, tmp_path):
    pb = pebble_always_valid
    store = str(tmp_path / "store")
    before = pb.request_count()
    r, out = drive(drive_bin, pb, store, ["a.test", "www.a.test"])
    assert r.returncode == 0, r.stderr
    assert_served_chain_ok(out, pb, ["a.test", "www.a.test"], tmp_path)
    assert out["generation"] == "1"
    # The driver's own count agrees with what pebble saw.
    assert pb.request_count() - before == int(out["requests"])
    # Keys are for root only; the active set is reached through domains/<name>.
    assert stat.S_IMODE(os.stat(out["privkey"]).st_mode) == 0o600
    assert out["privkey"] == os.path.join(store, "domains", "a.test", "privkey.pem")
    acct = [p for p in (tmp_path / "store" / "accounts").rglob("account.key")]
    assert len(acct) == 1 and stat.S_IMODE(acct[0].stat().st_mode) == 0o600


def test_second_certificate_reuses_account(drive_bin, pebble_always_valid, tmp_path):
    pb = pebble_always_valid
    store = str(tmp_path / "store")
    mark = pb.request_count()
    r1, out1 = drive(drive_bin, pb, store, ["b.test"])
    assert r1.returncode == 0, r1.stderr
    first = pb.requests()[mark:]
    mark = pb.request_count()
    r2, out2 = drive(drive_bin, pb, store, ["b.test"])
    assert r2.returncode == 0, r2.stderr
    second = pb.requests()[mark:]
    print(f"\nCA requests: first certificate {len(first)} {first}\n"
          f"second with the same account {len(second)} {second}")
    assert out2["generation"] == "2"
    assert out2["serial"] != out1["serial"]
    assert int(out1["requests"]) == len(first) and int(out2["requests"]) == len(second)
    # The account is registered once and then taken from the store.
    assert first.count("POST /sign-me-up") >= 1
    assert "POST /sign-me-up" not in second
    assert_served_chain_ok(out2, pb, ["b.test"], tmp_path)
    # The first set is kept in the archive, untouched.
    assert os.path.exists(os.path.join(store, "archive", "b.test", "1", "fullchain.pem"))


def test_twenty_in_a_row(drive_bin, pebble_always_valid, tmp_path):
    """Pebble's 5% badNonce and 50% authorization reuse stay on: every run must still succeed."""
    pb = pebble_always_valid
    failures = []
    for i in range(20):
        store = str(tmp_path / f"store{i}")
        names = [f"n{i}.test", f"www.n{i}.test", "shared.test"]
        r, out = drive(drive_bin, pb, store, names)
        if r.returncode != 0:
            failures.append((i, r.stderr[-2000:]))
            continue
        assert_served_chain_ok(out, pb, names, tmp_path)
    assert not failures, failures


def test_every_key_type(drive_bin, pebble_always_valid, tmp_path):
    pb = pebble_always_valid
    for kt in ("ec256", "ec384", "rsa2048", "rsa3072"):
        r, out = drive(drive_bin, pb, str(tmp_path / kt), [f"{kt}.test"], "-k", kt)
        assert r.returncode == 0, r.stderr
        assert_served_chain_ok(out, pb, [f"{kt}.test"], tmp_path)


def test_ip_identifier(drive_bin, pebble_always_valid, tmp_path):
    pb = pebble_always_valid
    r, out = drive(drive_bin, pb, str(tmp_path / "ip"), ["127.0.0.1"])
    assert r.returncode == 0, r.stderr
    assert_served_chain_ok(out, pb, ["127.0.0.1"], tmp_path)


def test_alternate_chains_kept(drive_bin, workdir, tmp_path):
    pb = acmetest.Pebble(os.path.join(workdir, "pebble-alt"), always_valid=True,
                         env_extra={"PEBBLE_ALTERNATE_ROOTS": "2"})
    try:
        r, out = drive(drive_bin, pb, str(tmp_path / "store"), ["alt.test"])
        assert r.returncode == 0, r.stderr
        assert out["alternates"] == "2"
    finally:
        pb.stop()


def test_ca_unreachable_is_reported(drive_bin, tmp_path):
    port = acmetest.free_port()
    r = subprocess.run([drive_bin, "-d", f"https://127.0.0.1:{port}/dir", "-s",
                        str(tmp_path / "s"), "-a", "x.test"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert "could not be reached" in r.stderr
    assert not (tmp_path / "s" / "domains" / "x.test").exists()
