"""Cluster mode (ACMECluster, docs/cluster.md): three apache2 nodes with mod_acme, one engine
(Debian's memcached or redis-server) holding the order lease and the challenge answers, a shared
folder for the certificate, and haproxy in front of the nodes on the port pebble validates, round
robin, so that the CA's validation requests reach nodes that did not order. Asserted with the
orders pebble accepted (through the test proxy) and the chains the nodes serve."""
import os
import re
import shutil
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import acmetest
import cluster
from chaosproxy import ChaosProxy

# Three names: three validation requests, round robin over three nodes.
NAMES = ["c.test", "www.c.test", "shop.c.test"]


@pytest.fixture(params=["memcache", "redis"])
def kind(request):
    missing = cluster.missing_binaries(request.param)
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (scripts/install-deps installs them)")
    return request.param


_made = [0]  # one folder per cluster in the session: a shared set never outlives its test


@pytest.fixture
def make_cluster(workdir, httpd_factory, request, kind):
    """make_cluster(lease) -> (nodes, proxy, engine): three nodes configured, not started."""
    made = []

    def make(lease=60, activation="graceful"):
        _made[0] += 1
        tag = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
        base = acmetest.public_dir(workdir, f"cluster-{_made[0]:02d}-{tag}")
        hport = acmetest.free_port()
        pb = acmetest.Pebble(os.path.join(base, "pebble"), http_port=hport)
        made.append(pb)
        proxy = ChaosProxy(pb)
        made.append(proxy)
        engine = cluster.Engine(kind, base)
        made.append(engine)
        nodes = [httpd_factory(ca=pb) for _ in range(3)]
        for h in nodes:
            h.http_port, h.https_port = acmetest.free_ports(2)
        made.append(cluster.Haproxy(base, hport, [h.http_port for h in nodes]))
        shared = cluster.shared_folder(base)
        for k, h in enumerate(nodes, 1):
            cluster.node_conf(h, proxy.directory, pb.ca_file, engine, shared, k, NAMES, lease,
                              activation)
            r = h.configtest()
            assert r.returncode == 0, r.stderr
        made.insert(0, nodes)
        return nodes, proxy, engine

    yield make
    # The nodes first: a node that loses its engine logs it.
    for item in made:
        if isinstance(item, list):
            for h in item:
                h.stop()
        else:
            item.stop()


def log_time(h, tag):
    """Wall-clock time of the first log line of h holding tag, or None."""
    for line in h.log_text().splitlines():
        if tag in line:
            return acmetest._log_time(line)
    return None


def new_accounts(proxy):
    """The newAccount requests (pebble's /sign-me-up) pebble answered (201 created, 200 found):
    a badNonce retry is one request, not two."""
    return [p for path, status, p in proxy.answered if path == "/sign-me-up" and status in (200,
                                                                                             201)]


def restart_empty(h, shared, why):
    """Node h stopped, its store removed, the shared set removed too (so that h must order),
    h started again; a line in its log marks the restart."""
    h.stop()
    shutil.rmtree(h.store, ignore_errors=True)  # none yet for a node never started
    shutil.rmtree(os.path.join(shared, "staging", "c.test"))
    with open(h.error_log, "a") as f:
        f.write(f"--- restarted by the test: {why}\n")
    h.start()


def shared_accounts(shared):
    """The account folders of the shared folder: accounts/<ca-id>, without temporary ones."""
    top = os.path.join(shared, "accounts")
    return [os.path.join(top, n) for n in os.listdir(top) if not n.startswith(".")]


def challenge_hits(h):
    """Validation requests node h answered with 200."""
    try:
        with open(os.path.join(h.root, "access.log")) as f:
            return sum(1 for line in f if "/.well-known/acme-challenge/" in line and
                       re.search(r" HTTP/1\.1 200 ", line))
    except OSError:
        return 0


@pytest.mark.slow(60)
@pytest.mark.parametrize("activation", ["graceful", "live"])
def test_one_order_every_node_serves(make_cluster, activation):
    nodes, proxy, _ = make_cluster(activation=activation)
    cluster.start_all(nodes)
    serial, _ = cluster.wait_all_serve(nodes, NAMES[0], 60)
    assert len(proxy.new_orders()) == 1, proxy.new_orders()
    orderers = [h for h in nodes if "ACME04001" in h.log_text()]
    assert len(orderers) == 1, [h.root for h in orderers]
    others = [h for h in nodes if h is not orderers[0]]
    # The validation requests went round robin: nodes that did not order answered some, from
    # the challenge cache in the engine.
    assert sum(challenge_hits(h) for h in others) >= 1, [challenge_hits(h) for h in nodes]
    published = log_time(orderers[0], "ACME04002")
    assert published, orderers[0].log_text()[-3000:]
    for h in others:
        assert "ACME04013: c.test: imported" in h.log_text(), h.log_text()[-3000:]
        # Within one look at the shared folder (a second), with room for a loaded machine.
        assert log_time(h, "ACME04013") - published < 5, h.log_text()[-3000:]
        assert "ACME04003: c.test: no order from this node: node n" in h.log_text()
    # Each node serves it from its own store (staged, promoted by its parent).
    for h in nodes:
        assert os.path.islink(os.path.join(h.store, "domains", "c.test"))
    assert {cluster.served_serial(h, "www.c.test") for h in nodes} == {serial}
    # One account for the cluster: the orderer registered it and published it.
    assert len(new_accounts(proxy)) == 1, new_accounts(proxy)
    assert "ACME04020" in orderers[0].log_text(), orderers[0].log_text()[-3000:]
    # A node that comes (back) with an empty store imports the shared set: no order.
    late = others[0]
    late.stop()
    shutil.rmtree(late.store)
    with open(late.error_log, "a") as f:
        f.write("--- restarted by the test with an empty store\n")
    late.start()
    cluster.wait_all_serve([late], NAMES[0], 30, serial=serial)
    assert late.log_text().split("--- restarted by the test")[1].count("ACME04013") == 1
    assert len(proxy.new_orders()) == 1, proxy.new_orders()


@pytest.mark.parametrize("args, expected", [
    ("shmcb:/x /srv/shared", "expected memcache:HOST:PORT or redis:HOST:PORT"),
    ("redis:127.0.0.1 /srv/shared", "expected HOST:PORT"),
    ("redis:127.0.0.1:99999 /srv/shared", "the port is not a number"),
    ("memcache:127.0.0.1:11211 shared", "must be an absolute path"),
    ("memcache:127.0.0.1:11211", "needs the engine and the shared folder"),
    ("memcache:127.0.0.1:11211 /srv/shared node=../x", "a node name is 1 to 64"),
    ("memcache:127.0.0.1:11211 /srv/shared lease=2", "the lease is a number of seconds from 5"),
    ("memcache:127.0.0.1:11211 /srv/shared lease=9999", "the lease is a number of seconds"),
    ("memcache:127.0.0.1:11211 /srv/shared colour=red", "expected node=NAME or lease=SECONDS"),
])
def test_configtest_names_each_mistake(httpd_factory, args, expected):
    h = httpd_factory()
    h.write_conf("ACMEAgreement accepted\n"
                 f"ACMECluster {args}\nACMEDomain c.test\n" + h.ssl_vhost("c.test"))
    r = h.configtest()
    assert r.returncode != 0
    assert f"ACMECluster" in r.stderr and expected in r.stderr, r.stderr


def test_configtest_cluster_placement_and_cache(httpd_factory):
    h = httpd_factory()
    h.write_conf("ACMEAgreement accepted\n"
                 "<ACMEDomain c.test>\nACMECluster redis:127.0.0.1:6379 /srv/shared\n"
                 "</ACMEDomain>\n" + h.ssl_vhost("c.test"))
    r = h.configtest()
    assert r.returncode != 0 and "cannot be used inside <ACMEDomain>" in r.stderr, r.stderr
    h.write_conf("ACMEAgreement accepted\n"
                 "ACMECluster redis:127.0.0.1:6379 /srv/shared node=a\n"
                 "ACMECluster redis:127.0.0.1:6379 /srv/shared node=b\n"
                 "ACMEDomain c.test\n" + h.ssl_vhost("c.test"))
    r = h.configtest()
    assert r.returncode != 0 and "ACMECluster is duplicate" in r.stderr, r.stderr
    # The answers in one node's shared memory: a warning naming the fix.
    h.write_conf("ACMEAgreement accepted\n"
                 "ACMECluster redis:127.0.0.1:6379 /srv/shared\n"
                 "ACMEDomain c.test\n" + h.ssl_vhost("c.test"))
    r = h.configtest()
    assert r.returncode == 0, r.stderr
    assert "ACME04016: ACMECluster with ACMEChallengeCache shmcb" in r.stderr, r.stderr
    assert "give ACMEChallengeCache redis:127.0.0.1:6379" in r.stderr


@pytest.mark.slow(90)
def test_holder_killed_mid_order(make_cluster):
    lease = 10
    nodes, proxy, _ = make_cluster(lease=lease)
    proxy.hold("/chalZ/")  # the holder's order waits at its challenge response
    cluster.start_all(nodes)
    assert proxy.wait_held(60), "\n".join(h.log_text()[-2000:] for h in nodes)
    first = acmetest.wait_until(lambda: cluster.holder(nodes), 10, "a node holding the lease")
    taken = log_time(first, "ACME04001")
    assert len(proxy.new_orders()) == 1
    cluster.kill_node(first)
    proxy.release()  # the dead node's request goes on; nobody finalizes its order
    rest = [h for h in nodes if h is not first]
    second_at = acmetest.wait_until(
        lambda: time.time() if len(proxy.new_orders()) >= 2 else None,
        lease + 60, lambda: "a second order\n" + "\n".join(h.log_text()[-2500:] for h in rest))
    # No second order while the dead node's lease was live: taken at `taken`, it lasts at least
    # `lease` seconds from there.
    assert second_at >= taken + lease - 0.2, (second_at - taken)
    cluster.wait_all_serve(rest, NAMES[0], 60)
    assert len(proxy.new_orders()) == 2
    second = [h for h in rest if "ACME04001" in h.log_text()]
    assert len(second) == 1


@pytest.mark.slow(90)
def test_engine_restarted_mid_order(make_cluster):
    lease = 15
    nodes, proxy, engine = make_cluster(lease=lease)
    for h in nodes:
        # While the engine is down: the lease cannot be renewed or taken, the answers cannot
        # be stored; each says so (and the socache provider too).
        h.allowed_errors = ["ACME04003", "ACME04015", "ACME04006", "socache_memcache:crit",
                            "socache_redis:crit"]
    proxy.hold("/chalZ/")
    cluster.start_all(nodes)
    assert proxy.wait_held(60), "\n".join(h.log_text()[-2000:] for h in nodes)
    first = acmetest.wait_until(lambda: cluster.holder(nodes), 10, "a node holding the lease")
    engine.restart()
    # The holder notices the lost keys and takes its lease back; its answers are stored again.
    assert first.wait_log("ACME04004", timeout=lease), first.log_text()[-3000:]
    acmetest.wait_until(lambda: re.search(r"ACME04014: c\.test: 3 ", first.log_text()), lease,
                        lambda: first.log_text()[-3000:])
    proxy.release()
    cluster.wait_all_serve(nodes, NAMES[0], 90)
    assert len(proxy.new_orders()) == 1, proxy.new_orders()
    finalized = [a for a in proxy.answered if a[0].startswith("/finalize-order/") and a[1] == 200]
    assert len(finalized) == 1, finalized
    assert [h for h in nodes if "ACME04001" in h.log_text()] == [first]


@pytest.mark.slow(60)
def test_engine_down_no_order(make_cluster):
    nodes, proxy, engine = make_cluster()
    engine.stop()
    for h in nodes:
        h.allowed_errors = ["ACME04003"]
    cluster.start_all(nodes)
    for h in nodes:
        # Each node says why it does not order, naming the engine, and what it does next.
        acmetest.wait_until(
            lambda: re.search(r"ACME04003: c\.test: no order from this node: the cluster engine "
                              + re.escape(engine.spec) + r" cannot be used .*never ordering "
                              r"without it; looking again every second", h.log_text()),
            30, lambda: h.log_text()[-3000:])
    assert proxy.new_orders() == []
    engine.start()
    serial, _ = cluster.wait_all_serve(nodes, NAMES[0], 60)
    assert len(proxy.new_orders()) == 1, proxy.new_orders()
    assert len([h for h in nodes if "ACME04001" in h.log_text()]) == 1


@pytest.mark.slow(60)
def test_account_shared_restarted_node_orders(make_cluster):
    """A node back with an empty store that must order (no shared set) takes the shared
    account: no second newAccount."""
    nodes, proxy, _ = make_cluster()
    cluster.start_all(nodes)
    serial, _ = cluster.wait_all_serve(nodes, NAMES[0], 60)
    assert len(new_accounts(proxy)) == 1, new_accounts(proxy)
    late = [h for h in nodes if "ACME04001" not in h.log_text()][0]
    restart_empty(late, late.cluster_shared, "empty store, no shared set")
    acmetest.wait_until(lambda: cluster.served_serial(late, NAMES[0]) not in (None, serial), 60,
                        lambda: late.log_text()[-3000:])
    after = late.log_text().split("--- restarted by the test")[1]
    assert "ACME04001" in after, after[-3000:]
    assert "ACME04018: the account https://" in after, after[-3000:]
    assert len(proxy.new_orders()) == 2, proxy.new_orders()
    assert len(new_accounts(proxy)) == 1, new_accounts(proxy)


@pytest.mark.slow(60)
@pytest.mark.parametrize("hostile", ["other-key", "symlink"])
def test_account_shared_hostile_refused(make_cluster, hostile):
    """A shared account that fails the store's checks is refused with ACME04019 naming why; the
    node registers its own and publishes it in its place."""
    nodes, proxy, _ = make_cluster()
    first, second = nodes[0], nodes[1]
    first.start()
    serial, _ = cluster.wait_all_serve([first], NAMES[0], 60)
    assert len(new_accounts(proxy)) == 1, new_accounts(proxy)
    shared = first.cluster_shared
    [acct] = shared_accounts(shared)
    if hostile == "other-key":
        # A key of its own over the published one (owner and mode kept): account.json now
        # names another key.
        key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        with open(os.path.join(acct, "account.key"), "wb") as f:
            f.write(key)
        why = "account.json belongs to another key"
    else:
        # A link to a valid account elsewhere (the first node's own): never followed.
        shutil.rmtree(acct)
        os.symlink(os.path.join(first.store, "accounts", os.path.basename(acct)), acct)
        why = "account.key cannot be read"
    restart_empty(second, shared, hostile)
    acmetest.wait_until(lambda: cluster.served_serial(second, NAMES[0]) not in (None, serial),
                        60, lambda: second.log_text()[-3000:])
    log = second.log_text()
    assert "ACME04019: the account for " in log and why in log, log[-3000:]
    assert "this node registers its own" in log
    assert "ACME04018" not in log
    assert len(new_accounts(proxy)) == 2, new_accounts(proxy)
    # Published in its place: a folder again, its key the second node's.
    assert "ACME04020" in log, log[-3000:]
    assert not os.path.islink(acct)
    with open(os.path.join(acct, "account.key"), "rb") as f, \
            open(os.path.join(second.store, "accounts", os.path.basename(acct),
                              "account.key"), "rb") as g:
        assert f.read() == g.read()
