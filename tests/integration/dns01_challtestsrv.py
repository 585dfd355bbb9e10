#!/usr/bin/python3
"""The tests' ACMEDNSCommand: sets and clears dns-01 TXT records in pebble-challtestsrv through
its management API, as a real command would at a DNS provider.

    dns01_challtestsrv.py MGMT_URL LOG [MODE] setup|teardown NAME VALUE

mod_acme appends `setup|teardown NAME VALUE` to the arguments of ACMEDNSCommand; the record is
_acme-challenge.NAME. Every call is appended to LOG as one line "ACTION NAME VALUE". MODE makes
it misbehave for the failure tests:
  fail        exits with 3 after writing an error on stderr
  hang        sleeps for an hour (mod_acme kills it at ACMEDNSTimeout)
  noop        exits 0 without setting anything (the TXT record never becomes visible)
  hang-once   hangs on the first setup only (a marker file beside LOG remembers it)
Only the standard library: it runs as the server's User with PATH as its whole environment.
"""
import json
import os
import sys
import time
import urllib.request


def mgmt(url, path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


def main(argv):
    if len(argv) < 6 or argv[-3] not in ("setup", "teardown"):
        sys.stderr.write("usage: dns01_challtestsrv.py MGMT_URL LOG [MODE] "
                         "setup|teardown NAME VALUE\n")
        return 2
    url, log = argv[1], argv[2]
    mode = argv[3] if len(argv) == 7 else ""
    action, name, value = argv[-3:]
    with open(log, "a") as f:
        f.write(f"{action} {name} {value}\n")
    host = f"_acme-challenge.{name}."
    if mode == "fail":
        sys.stderr.write(f"provider API said no to {host}\n")
        return 3
    if mode == "hang" or (mode == "hang-once" and action == "setup" and
                          not os.path.exists(log + ".hung")):
        open(log + ".hung", "w").close()
        # A test whose server cannot kill this (its child was SIGKILLed) stops it by this PID.
        with open(log + ".pids", "a") as f:
            f.write(f"{os.getpid()}\n")
        print(f"setting {host} ...", flush=True)
        time.sleep(3600)
    if mode == "noop":
        print(f"pretending to set {host}")
        return 0
    if action == "setup":
        mgmt(url, "/set-txt", {"host": host, "value": value})
        print(f"set {host} TXT {value}")
    else:
        # challtestsrv can only clear all values of a name at once.
        mgmt(url, "/clear-txt", {"host": host})
        print(f"cleared {host}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
