"""The operator's view: SetHandler acme-status (JSON), acme-metrics (Prometheus text and
OpenMetrics), the server-status section, all read from what the parent and the renewal driver
publish in shared memory; against the real pebble (behind the test proxy where a CA must wait
or refuse) and Debian's apache2, parsed with Debian's python3-prometheus-client and scraped by
Debian's prometheus."""
import base64
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

import acmetest
from chaosproxy import ChaosProxy
from test_httpd import ACCOUNT, issuer_is_self, wait_real_cert

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))

LOCATIONS = """<Location /acme-status>
    SetHandler acme-status
    Require ip 127.0.0.1
</Location>
<Location /acme-metrics>
    SetHandler acme-metrics
    Require ip 127.0.0.1
</Location>
<Location /server-status>
    SetHandler server-status
    Require ip 127.0.0.1
</Location>
LogFormat "%P %U %>s" pidlog
"""


@pytest.fixture
def proxy(pebble):
    p = ChaosProxy(pebble)
    yield p
    p.stop()


def configure(h, proxy, body, extra=""):
    """The server with the status locations, the CA behind the proxy, and body."""
    h.write_conf(f"ACMECertificateAuthority {proxy.directory}\n"
                 f"ACMECACertificateFile {h.pebble.ca_file}\n" + ACCOUNT + LOCATIONS +
                 f"CustomLog {h.root}/pid.log pidlog\n" + extra + body,
                 extra_modules=("status",), ca=False)


def get(h, path, headers=None):
    return acmetest.http_get(h.http_port, "localhost", path, headers)


def schema_check(doc, one=False):
    """doc follows docs/status.schema.json (python3-jsonschema)."""
    import jsonschema
    with open(os.path.join(TOP, "docs", "status.schema.json")) as f:
        schema = json.load(f)
    if one:
        schema = dict(schema["$defs"]["certificate"], **{"$defs": schema["$defs"]})
    jsonschema.validate(doc, schema)


def status(h, name=None):
    code, headers, body = get(h, "/acme-status" + (f"/{name}" if name else ""))
    assert code == 200, body
    assert headers["Content-Type"].startswith("application/json")
    doc = json.loads(body)
    schema_check(doc, one=bool(name))
    return doc


def cert_of(doc, domain):
    found = [c for c in doc["certificates"] if c["domain"] == domain]
    assert len(found) == 1, doc
    return found[0]


def wait_state(h, domain, state, timeout=30.0):
    last = []

    def check():
        last[:] = [status(h, domain)]
        return last[0]["state"] == state
    acmetest.wait_until(check, timeout, lambda: f"{domain} in state {state}; last: {last}\n"
                                                f"{h.log_text()[-2000:]}")
    return last[0]


def metrics(h, openmetrics=False):
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    code, hdrs, body = get(h, "/acme-metrics", headers)
    assert code == 200, body
    return hdrs["Content-Type"], body.decode()


def families(text):
    from prometheus_client.parser import text_string_to_metric_families
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(fams, name):
    return [s for f in fams.values() for s in f.samples if s.name == name]


def every_child(h, path, n=3):
    """GETs path over n connections kept open at once (prefork: each one holds its child, so
    each request is another child's); returns the bodies and the PIDs that answered (from the
    server's log of this test, which says which process answered each request)."""
    def logged():
        try:
            with open(os.path.join(h.root, "pid.log")) as f:
                return [line.split()[0] for line in f if f" {path} " in line]
        except OSError:
            return []
    before = len(logged())
    conns, bodies = [], []
    try:
        for _ in range(n):
            c = http.client.HTTPConnection("127.0.0.1", h.http_port, timeout=10)
            c.request("GET", path, headers={"Host": "localhost"})
            r = c.getresponse()
            assert r.status == 200
            bodies.append(r.read())
            conns.append(c)
        # A request is logged after its answer is sent.
        acmetest.wait_until(lambda: len(logged()) >= before + n, 10, "the requests logged")
    finally:
        for c in conns:
            c.close()
    return bodies, set(logged()[before:])


def served_serial_and_fingerprint(h, name):
    cert = acmetest.tls_peer_cert(h.https_port, name)
    from cryptography.hazmat.primitives import hashes, serialization
    der = cert.public_bytes(serialization.Encoding.DER)
    fp = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    assert cert.fingerprint(hashes.SHA256()) == hashlib.sha256(der).digest()
    return format(cert.serial_number, "x"), fp, cert


def assert_no_key_material(h, name, *texts):
    with open(os.path.join(h.store, "domains", name, "privkey.pem"), "rb") as f:
        pem = f.read()
    b64 = b"".join(l for l in pem.splitlines() if not l.startswith(b"-----"))
    der = base64.b64decode(b64)
    for text in texts:
        assert b"PRIVATE KEY" not in text
        for chunk in (b64[:24], b64[-24:], der[-16:].hex().encode(), der[-16:].hex().upper().encode()):
            assert chunk not in text


def test_states_documents_and_no_key(httpd_factory, proxy, pebble):
    """fallback while the CA waits, valid after issuance (what the vhost serves), one
    certificate by name and 404, renewing while the new order waits, staged when the operator
    restarts by hand, and never a byte of the key."""
    h = httpd_factory(mpm="prefork")
    configure(h, proxy, "ACMEDomain a.test\n" + h.ssl_vhost("a.test"))
    proxy.hold()
    h.start()
    assert proxy.wait_held(), h.log_text()[-3000:]
    doc = status(h)
    assert doc["module"].startswith("mod_acme/")
    assert doc["store"] == h.store
    assert doc["cas"] == [proxy.directory]
    c = cert_of(doc, "a.test")
    assert c["state"] == "fallback"
    assert c["certificate"] is None and c["staged"] is None
    assert c["names"] == ["a.test"] and c["key-type"] == "ec256"
    assert c["renewal"]["reason"] == "config-change"

    proxy.release()
    wait_real_cert(h, "a.test")
    c = wait_state(h, "a.test", "valid")
    serial, fp, cert = served_serial_and_fingerprint(h, "a.test")
    assert c["certificate"]["serial"] == serial
    assert c["certificate"]["sha256-fingerprint"] == fp
    assert c["certificate"]["names"] == ["a.test"]
    assert c["certificate"]["issuer"].startswith("CN=Pebble Intermediate CA")
    na = cert.not_valid_after.replace(tzinfo=None).isoformat() + "Z"
    assert c["certificate"]["not-after"] == na
    assert c["renewal"]["reason"] == "window"
    assert c["failures"] == 0 and c["last-attempt"]["result"] == "success"
    assert c["account"].startswith(proxy.directory.rsplit("/", 1)[0] + "/my-account/")
    assert status(h, "a.test") == c

    code, headers, body = get(h, "/acme-status/nope.test")
    assert code == 404 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"error": "not found", "name": "nope.test"}

    _, om = metrics(h, openmetrics=True)
    _, text = metrics(h)
    whole = get(h, "/acme-status")[2]
    assert_no_key_material(h, "a.test", whole, text.encode(), om.encode(),
                           get(h, "/server-status")[2], get(h, "/server-status?auto")[2])

    # A name more and the operator restarts by hand: the new order waits at the CA.
    configure(h, proxy, "ACMEAutoRestart off\nACMEDomain a.test b.test\n" +
              h.ssl_vhost("a.test", ["b.test"]))
    proxy.hold("/order-plz")
    h.graceful()
    assert proxy.wait_held(), h.log_text()[-3000:]
    c = wait_state(h, "a.test", "renewing")
    assert c["renewal"]["reason"] == "config-change"
    assert c["mismatch"] and "b.test" in c["mismatch"]
    assert c["certificate"]["serial"] == serial
    proxy.release()
    c = wait_state(h, "a.test", "staged")
    assert c["staged"]["names"] == ["a.test", "b.test"]
    assert c["staged"]["serial"] != serial
    assert c["certificate"]["serial"] == serial  # still served until the restart
    h.graceful()
    cert = wait_real_cert(h, "b.test")
    c = wait_state(h, "a.test", "valid")
    assert c["certificate"]["names"] == ["a.test", "b.test"]
    assert c["staged"] is None


def test_failed_with_the_problem_the_ca_sent(httpd_factory, proxy):
    proxy.mode, proxy.only_path, proxy.retry_after = "429", "/order-plz", 3600
    h = httpd_factory()
    configure(h, proxy, "ACMEDomain refused.test\n" + h.ssl_vhost("refused.test"))
    h.start()
    assert h.wait_log("ACME01055: refused.test", timeout=20), h.log_text()[-2000:]
    h.allowed_errors.append("ACME01055")
    c = wait_state(h, "refused.test", "failed")
    assert c["failures"] == 1
    last = c["last-attempt"]
    assert last["result"] == "failed"
    assert last["problem-type"] == "urn:ietf:params:acme:error:rateLimited"
    assert "rateLimited (HTTP 429)" in last["detail"]
    retry = time.mktime(time.strptime(c["next-retry"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert 3500 <= retry - time.time() <= 3700
    assert c["certificate"] is None
    fams = families(metrics(h)[1])
    assert [s.value for s in samples(fams, "acme_certificate_failures")] == [1]
    assert samples(fams, "acme_renewal_errors_total")[0].value >= 1
    refused = [s for s in samples(fams, "acme_ca_requests_total") if s.labels["status"] == "429"]
    assert refused and refused[0].labels["ca"] == proxy.directory
    assert issuer_is_self(acmetest.tls_peer_cert(h.https_port, "refused.test"))


def test_ari_window_and_profile(httpd_factory, proxy):
    """A CA with renewal information (RFC 9773) and profiles (the proxy plays both): the served
    certificate's profile, and the next renewal picked in the CA's window (reason ari), with
    the next check, and the window and explanationURL as the CA gave them."""
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now + datetime.timedelta(days=1), now + datetime.timedelta(days=2)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    proxy.ari = {"start": start.strftime(fmt), "end": end.strftime(fmt)}
    proxy.ari_explanation = "https://ca.test/incident/42"
    proxy.profiles = {"classic": "the usual", "shortlived": "days"}
    h = httpd_factory()
    configure(h, proxy, "ACMEProfile shortlived\nACMEDomain ari.test\n" + h.ssl_vhost("ari.test"))
    h.start()
    wait_real_cert(h, "ari.test")
    last = []

    def ari_known():
        last[:] = [status(h, "ari.test")]
        return last[0]["renewal"]["reason"] == "ari"
    acmetest.wait_until(ari_known, 30, lambda: f"reason ari: {last}\n{h.log_text()[-2000:]}")
    c = last[0]
    assert c["state"] == "valid"
    assert c["certificate"]["profile"] == "shortlived"
    assert start.strftime(fmt) <= c["renewal"]["next"] <= end.strftime(fmt)
    assert c["ari"]["renew-at"] == c["renewal"]["next"]
    assert c["ari"]["next-check"] > now.strftime(fmt)
    assert c["ari"]["window-start"] == start.strftime(fmt)
    assert c["ari"]["window-end"] == end.strftime(fmt)
    assert c["ari"]["explanation-url"] == "https://ca.test/incident/42"
    fams = families(metrics(h)[1])
    assert samples(fams, "acme_certificate_info")[0].labels["profile"] == "shortlived"
    nxt = samples(fams, "acme_certificate_next_renewal_seconds")[0].value
    assert start.timestamp() - 1 <= nxt <= end.timestamp()

    # The answer is kept in the job file until the CA's time to ask again: the next generation
    # shows the same renewal time and window without asking the CA.
    asked = [p for _, p in proxy.requests if p.startswith("/renewal-info/")]
    assert len(asked) == 1, proxy.requests
    count = h.log_text().count("AH00493")
    h.graceful()
    assert h.wait_log("AH00493", count=count + 1)
    h.wait_driver()
    # The new generation's driver took the kept answer (read when it took the lock, before it
    # would start a worker to ask).
    assert h.wait_log("ACME02314: ari.test", timeout=30), h.log_text()[-3000:]
    again = status(h, "ari.test")
    assert again["renewal"] == c["renewal"]
    assert again["ari"] == c["ari"]
    assert [p for _, p in proxy.requests if p.startswith("/renewal-info/")] == asked


@pytest.mark.slow(40)
def test_expired_when_renewal_keeps_failing(httpd_factory, workdir):
    """A pebble issuing 20-second certificates behind a proxy that fails every request once the
    first certificate is in: renewal fails (failed), then the certificate expires, and the
    status says so at once (the driver publishes again at notAfter, not a minute later)."""
    pb = acmetest.Pebble(os.path.join(workdir, "pebble-status-short"), validity=20)
    proxy = ChaosProxy(pb)
    try:
        h = httpd_factory(ca=pb)
        configure(h, proxy, "ACMEDomain old.test\n" + h.ssl_vhost("old.test"))
        h.start()
        wait_real_cert(h, "old.test")
        proxy.mode = "500"
        h.allowed_errors.append("ACME01055")
        c = wait_state(h, "old.test", "failed", timeout=30)
        not_after = c["certificate"]["not-after"]
        c = wait_state(h, "old.test", "expired", timeout=30)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        assert c["certificate"]["not-after"] == not_after <= now
        assert c["failures"] >= 1
        states = {s.labels["state"]: s.value
                  for s in samples(families(metrics(h)[1]), "acme_certificate_state")}
        assert states["expired"] == 1
        code, _, auto = get(h, "/server-status?auto")
        assert "ACMECertificatesExpired: 1" in auto.decode().splitlines()
    finally:
        proxy.stop()
        pb.stop()


def test_every_child_and_after_graceful_restart_counters_survive(httpd_factory, proxy):
    h = httpd_factory(mpm="prefork")
    configure(h, proxy, "ACMEDomain kids.test\n" + h.ssl_vhost("kids.test"))
    h.start()
    wait_real_cert(h, "kids.test")
    wait_state(h, "kids.test", "valid")
    h.settle()
    bodies, pids = every_child(h, "/acme-status/kids.test")
    assert len(pids) >= 2, pids
    # The same certificate and state from every child (the driver may have published the
    # time of its next question to the CA in between).
    assert len({json.dumps([json.loads(b)[k] for k in ("state", "certificate", "renewal")])
                for b in bodies}) == 1, bodies
    before = families(metrics(h)[1])
    renewals = samples(before, "acme_renewals_total")[0].value
    assert renewals >= 1
    created = sum(s.value for s in samples(before, "acme_ca_requests_total")
                  if s.labels["status"] == "201")
    assert created >= 2  # account and order at least

    old = set(h.children())
    h.graceful()
    acmetest.wait_until(lambda: h.generation_started() != float("inf"), 20, "the restart")
    acmetest.wait_until(lambda: len(set(h.children()) - old) >= 2, 20, "new children")
    # At once, over new connections: the new generation's children read what the parent
    # published from the store.
    bodies, pids = every_child(h, "/acme-status/kids.test")
    assert all(json.loads(b)["state"] == "valid" for b in bodies), bodies
    assert len(pids) >= 2, pids
    assert pids & (set(str(p) for p in h.children()) - set(str(p) for p in old)), pids
    after = families(metrics(h)[1])
    assert samples(after, "acme_renewals_total")[0].value >= renewals
    assert sum(s.value for s in samples(after, "acme_ca_requests_total")
               if s.labels["status"] == "201") >= created


def test_server_status_and_metrics_formats(httpd_factory, proxy):
    h = httpd_factory()
    configure(h, proxy, 'ACMEDomain m.test\n' + h.ssl_vhost("m.test"))
    h.start()
    cert = wait_real_cert(h, "m.test")
    c = wait_state(h, "m.test", "valid")

    code, _, page = get(h, "/server-status")
    assert code == 200
    assert b"mod_acme certificates" in page and b"<td>m.test</td>" in page
    code, _, auto = get(h, "/server-status?auto")
    lines = auto.decode().splitlines()
    assert "ACMECertificatesTotal: 1" in lines and "ACMECertificatesValid: 1" in lines
    assert any(l.startswith("ACMECertificate: m.test ec256 valid ") for l in lines), lines

    ctype, text = metrics(h)
    assert ctype.startswith("text/plain; version=0.0.4")
    fams = families(text)
    labels = {"domain": "m.test", "key_type": "ec256"}
    na = samples(fams, "acme_certificate_not_after_seconds")
    assert [s.labels for s in na] == [labels]
    assert na[0].value == cert.not_valid_after.replace(tzinfo=__import__("datetime").timezone.utc).timestamp()
    assert samples(fams, "acme_certificate_not_before_seconds")[0].value < time.time() + 5
    assert samples(fams, "acme_certificate_next_renewal_seconds")[0].value > time.time()
    assert samples(fams, "acme_certificate_failures")[0].value == 0
    info = samples(fams, "acme_certificate_info")[0]
    assert info.labels["serial"] == c["certificate"]["serial"]
    assert info.labels["issuer"] == c["certificate"]["issuer"]
    states = {s.labels["state"]: s.value for s in samples(fams, "acme_certificate_state")}
    assert states["valid"] == 1 and sum(states.values()) == 1
    assert fams["acme_renewals"].type == "counter"

    ctype, om = metrics(h, openmetrics=True)
    assert ctype.startswith("application/openmetrics-text; version=1.0.0")
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    ofams = {f.name: f for f in text_string_to_metric_families(om)}
    assert ofams["acme_certificate"].type == "info"
    assert ofams["acme_renewals"].type == "counter"
    assert ofams["acme_certificate_not_after_seconds"].samples[0].value == na[0].value


def plant_staged_set(h, name, issuer_cn, profile):
    """A set in staging/<name> (what the User may put there) issued by a CA named issuer_cn,
    with meta.json naming profile: the parent promotes it at start."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=60))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    staged = os.path.join(h.store, "staging", name)
    os.makedirs(staged, mode=0o700)
    os.chmod(h.store, 0o700)
    with open(os.path.join(staged, "privkey.pem"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(os.path.join(staged, "privkey.pem"), 0o600)
    with open(os.path.join(staged, "fullchain.pem"), "wb") as f:
        f.write(leaf.public_bytes(serialization.Encoding.PEM) +
                ca.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(staged, "meta.json"), "w") as f:
        json.dump({"names": [name], "ca": h.pebble_url, "key-type": "ec256",
                   "profile": profile}, f)
    return leaf


def test_label_values_are_escaped(httpd_factory, proxy):
    """An issuer with a quote and a backslash, and a profile (from a meta.json the User may
    write) with a quote, a backslash and a line feed: both parsers read the labels back, the
    line feed made harmless, nothing else changed."""
    h = httpd_factory()
    h.pebble_url = proxy.directory
    issuer = 'Odd "CA" \\ one'
    leaf = plant_staged_set(h, "esc.test", issuer, 'x"y\\z\nw')
    configure(h, proxy, "ACMEDomain esc.test\n" + h.ssl_vhost("esc.test"))
    h.start()
    assert acmetest.tls_peer_cert(h.https_port, "esc.test").serial_number == leaf.serial_number
    c = status(h, "esc.test")
    assert c["certificate"]["issuer"] == 'CN=Odd \\"CA\\" \\\\ one'  # RFC 2253 escapes
    assert c["certificate"]["profile"] == 'x"y\\z?w'
    fams = families(metrics(h)[1])
    info = samples(fams, "acme_certificate_info")[0]
    assert info.labels["issuer"] == c["certificate"]["issuer"]
    assert info.labels["profile"] == 'x"y\\z?w'
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    om = {f.name: f for f in text_string_to_metric_families(metrics(h, True)[1])}
    assert om["acme_certificate"].samples[0].labels["issuer"] == c["certificate"]["issuer"]
    assert om["acme_certificate"].samples[0].labels["profile"] == 'x"y\\z?w'


def test_prometheus_scrapes_the_metrics(httpd_factory, proxy, tmp_path):
    """Debian's prometheus, on a port of its own, scrapes acme-metrics; its HTTP API answers
    the certificate's notAfter."""
    prom = shutil.which("prometheus")
    assert prom, "install the Debian package prometheus (scripts/install-deps)"
    h = httpd_factory()
    configure(h, proxy, "ACMEDomain p.test\n" + h.ssl_vhost("p.test"))
    h.start()
    cert = wait_real_cert(h, "p.test")
    wait_state(h, "p.test", "valid")
    port = acmetest.free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                   "scrape_configs:\n  - job_name: acme\n    metrics_path: /acme-metrics\n"
                   f"    static_configs:\n      - targets: ['127.0.0.1:{h.http_port}']\n"
                   f"rule_files:\n  - {TOP}/conf-examples/prometheus-alerts.yml\n")
    data = tmp_path / "prometheus-data"
    data.mkdir()
    log = open(tmp_path / "prometheus.log", "w")
    proc = subprocess.Popen([prom, f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        url = (f"http://127.0.0.1:{port}/api/v1/query?" +
               urllib.parse.urlencode({"query": "acme_certificate_not_after_seconds"}))
        result = []

        def answered():
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    result[:] = json.load(r)["data"]["result"]
            except OSError:
                return False
            return bool(result)
        acmetest.wait_until(answered, 60, lambda: (tmp_path / "prometheus.log").read_text())
        assert result[0]["metric"]["domain"] == "p.test"
        assert result[0]["metric"]["key_type"] == "ec256"
        assert result[0]["metric"]["job"] == "acme"
        expected = cert.not_valid_after.replace(
            tzinfo=__import__("datetime").timezone.utc).timestamp()
        assert float(result[0]["value"][1]) == expected
        # The alert rules loaded, and a certificate of years fires none.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=5) as r:
            groups = json.load(r)["data"]["groups"]
        assert any(rule["name"] == "ACMECertificateExpiresSoon"
                   for g in groups for rule in g["rules"])
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_alert_rule_checks_and_fires(tmp_path):
    """conf-examples/prometheus-alerts.yml passes promtool, and fires for a certificate with 6
    days left and nothing staged, not for one with a new certificate staged."""
    promtool = shutil.which("promtool")
    assert promtool, "install the Debian package prometheus (scripts/install-deps)"
    rules = os.path.join(TOP, "conf-examples", "prometheus-alerts.yml")
    r = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    test = tmp_path / "alerts-test.yml"
    test.write_text(f"""rule_files:
  - {rules}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'acme_certificate_not_after_seconds{{domain="old.test",key_type="ec256"}}'
        values: '518400x120'
      - series: 'acme_certificate_state{{domain="old.test",key_type="ec256",state="staged"}}'
        values: '0x120'
      - series: 'acme_certificate_not_after_seconds{{domain="new.test",key_type="ec256"}}'
        values: '518400x120'
      - series: 'acme_certificate_state{{domain="new.test",key_type="ec256",state="staged"}}'
        values: '1x120'
    alert_rule_test:
      - eval_time: 90m
        alertname: ACMECertificateExpiresSoon
        exp_alerts:
          - exp_labels:
              severity: critical
              domain: old.test
              key_type: ec256
            exp_annotations:
              summary: "old.test (ec256) expires in under 7 days and was not renewed"
              description: "See /acme-status/old.test for the last attempt and the CA's problem."
""")
    r = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
