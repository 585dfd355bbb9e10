#!/usr/bin/python3
"""The integration tests' ACMENotifyCommand: `notify_script.py LOG MODE EVENT NAME`.

Appends one JSON line to LOG with its arguments, its uid, its pid and the ACME_* environment,
then: MODE ok exits 0 saying so, fail writes a complaint and exits 3, hang (with a child of its
own, whose pid is in the line too) sleeps until it is killed."""
import json
import os
import subprocess
import sys
import time


def main():
    log, mode = sys.argv[1], sys.argv[2]
    child = None
    if mode == "hang":
        child = subprocess.Popen(["/bin/sleep", "300"])
    entry = {"argv": sys.argv[1:], "uid": os.getuid(), "pid": os.getpid(),
             "child": child.pid if child else None, "time": time.time(),
             "env": {k: v for k, v in os.environ.items() if k.startswith("ACME_") or k == "PATH"}}
    with open(log, "a") as f:
        f.write(json.dumps(entry) + "\n")
    if mode == "fail":
        print("mail server said no")
        sys.exit(3)
    if mode == "hang":
        time.sleep(300)
    print(f"told {sys.argv[3]} for {sys.argv[4]}")


main()
