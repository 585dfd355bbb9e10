"""Demo: a local pebble, the mod_acme core obtaining a certificate, and the result checked."""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import acmetest  # noqa: E402


def step(n, text):
    print(f"\n== {n}. {text}", flush=True)


def main():
    work = tempfile.mkdtemp(prefix="mod_acme-demo-")
    names = ["demo.test", "www.demo.test"]
    pb = None
    try:
        step(1, "starting pebble, Let's Encrypt's test CA, on 127.0.0.1")
        pb = acmetest.Pebble(os.path.join(work, "pebble"), always_valid=True)
        print(f"   directory: {pb.directory}")
        print("   (challenge validation is simulated in this demo: PEBBLE_VA_ALWAYS_VALID=1)")

        store = os.path.join(work, "store")
        drive = os.path.join(TOP, "tests", "integration", "acme-drive")
        argv = [drive, "-d", pb.directory, "-c", pb.ca_file, "-s", store,
                "-e", "admin@demo.test", "-a", "-v", *names]
        step(2, f"obtaining a certificate for {' '.join(names)} (each CA request is logged)")
        before = pb.request_count()
        r = subprocess.run(argv, capture_output=True, text=True)
        for line in r.stderr.splitlines():
            print("   " + line)
        if r.returncode != 0:
            print("demo: issuance failed", file=sys.stderr)
            return 1
        out = dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)
        print(f"   requests to the CA: {out['requests']} (pebble counted "
              f"{pb.request_count() - before})")

        step(3, "the store")
        for root, _dirs, files in sorted(os.walk(store)):
            for f in sorted(files):
                path = os.path.join(root, f)
                mode = oct(os.stat(path).st_mode & 0o777)
                print(f"   {mode} {os.path.relpath(path, store)}")
        for link in sorted(os.listdir(os.path.join(store, "domains"))):
            target = os.readlink(os.path.join(store, "domains", link))
            print(f"   domains/{link} -> {target}")

        step(4, "the certificate, verified against pebble's root")
        ok, msg = acmetest.verify_chain(out["fullchain"], pb.root_pem(), work)
        print("   " + msg.strip().replace("\n", "\n   "))
        subprocess.run(["openssl", "x509", "-in", out["fullchain"], "-noout", "-subject",
                        "-issuer", "-dates", "-ext", "subjectAltName"], check=False)
        if not ok:
            return 1
        print("\ndemo: done")
        return 0
    finally:
        if pb:
            pb.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
