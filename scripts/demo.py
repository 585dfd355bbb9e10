"""Demo: pebble (Let's Encrypt's test CA) and Debian's Apache with mod_acme, on 127.0.0.1.
Shows the temporary certificate, the issuance over http-01, the automatic graceful restart and
the verified chain, step by step."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import acmetest  # noqa: E402

NAMES = ["demo.test", "www.demo.test"]


def step(n, text):
    print(f"\n== {n}. {text}", flush=True)


def show_cert(cert):
    print(f"   subject: {cert.subject.rfc4514_string()}")
    print(f"   issuer:  {cert.issuer.rfc4514_string()}")
    print(f"   names:   {', '.join(acmetest.san_names(cert))}")


def main():
    work = tempfile.mkdtemp(prefix="mod_acme-demo-")
    os.chmod(work, 0o755)  # the server's User reaches its store below
    pb = h = None
    try:
        step(1, "pebble, a local ACME CA, on 127.0.0.1 (it validates http-01 for real)")
        pb = acmetest.Pebble(os.path.join(work, "pebble"))
        print(f"   directory: {pb.directory}")

        step(2, "Apache with mod_acme; the configuration is just this:")
        h = acmetest.Httpd(os.path.join(work, "httpd"), pb)
        body = ("ACMEContactEmail admin@demo.test\nACMEAgreement accepted\n"
                f"ACMEDomain {' '.join(NAMES)}\n" + h.ssl_vhost(NAMES[0], NAMES[1:]))
        h.write_conf(body)
        print("   " + f"ACMECertificateAuthority {pb.directory}\n{body}".strip()
              .replace("\n", "\n   "))
        t0 = time.monotonic()
        h.start()
        print(f"   apache2 started (pid {h.pid()}), HTTPS on 127.0.0.1:{h.https_port}, "
              f"HTTP (for the CA's challenges) on 127.0.0.1:{h.http_port}")

        step(3, "at once: a temporary certificate, and 503 with Retry-After")
        cert = acmetest.tls_peer_cert(h.https_port, NAMES[0])
        show_cert(cert)
        status, headers, _ = acmetest.https_get(h.https_port, NAMES[0])
        print(f"   GET https://{NAMES[0]}/ -> {status}, Retry-After: "
              f"{headers.get('Retry-After')}")

        step(4, "by itself: order, challenges answered, certificate, graceful restart")
        wanted = ["ACME00026", "ACME01045", "ACME00028", "ACME01054", "ACME01070", "ACME01020"]
        seen = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(seen) < len(wanted):
            for line in h.log_text().splitlines():
                for tag in wanted:
                    if tag in line and tag not in seen:
                        seen.add(tag)
                        print("   " + line.split("] ", 3)[-1][:150])
            time.sleep(0.1)
        for _ in range(100):
            cert = acmetest.tls_peer_cert(h.https_port, NAMES[0])
            if cert.issuer != cert.subject:
                break
            time.sleep(0.1)
        print(f"   real certificate served {time.monotonic() - t0:.2f} s after start")

        step(5, "the served certificate, verified against pebble's root")
        show_cert(cert)
        chain = os.path.join(h.store, "domains", NAMES[0], "fullchain.pem")
        ok, msg = acmetest.verify_chain(chain, pb.root_pem(), work)
        print("   openssl verify: " + msg.strip().splitlines()[-1])
        status, _, body = acmetest.https_get(h.https_port, NAMES[0])
        print(f"   GET https://{NAMES[0]}/ -> {status}: {body.decode().strip()}")
        return 0 if ok and status == 200 else 1
    finally:
        if h:
            h.stop()
        if pb:
            pb.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
