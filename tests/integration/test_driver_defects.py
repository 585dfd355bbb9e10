"""The renewal driver against what goes wrong around it: a CA that never answers while the server
stops, a lock file that cannot be opened, an earlier generation that records a backoff or stages
a set after this one started, and a staged set that the parent refuses (issue 7, defects 1, 7, 8
and 13)."""
import fcntl
import json
import os
import pwd
import socket
import threading
import time

import acmetest
from test_httpd import ACCOUNT, issuer_is_self


class HangingCA:
    """A TCP listener that accepts connections and never answers: a CA that hangs."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((acmetest.LOOPBACK, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.directory = f"https://{acmetest.LOOPBACK}:{self.port}/dir"
        self.accepted = threading.Event()
        self.conns = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            self.accepted.set()

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def wait_gone(h, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and h.processes():
        time.sleep(0.02)
    return h.processes()


def test_stop_aborts_requests_to_a_hanging_ca(httpd_factory):
    """`apache2 -k stop` while a worker waits for a CA that never answers: the request is
    abandoned at once, every process leaves, and httpd has to kill nothing."""
    ca = HangingCA()
    try:
        h = httpd_factory()
        h.write_conf(f"ACMECertificateAuthority {ca.directory}\n"
                     f"ACMECACertificateFile {h.pebble.ca_file}\n" + ACCOUNT +
                     "ACMEDomain hang.test\n" + h.ssl_vhost("hang.test"), ca=False)
        h.start()
        assert ca.accepted.wait(20), "the worker never reached the CA\n" + h.log_text()[-2000:]
        h.settle()
        r = h.run("-k", "stop")
        assert r.returncode == 0, r.stdout + r.stderr
        left = wait_gone(h)
        log = h.log_text()
        assert not left, f"processes left: {left}\n{log[-3000:]}"
        assert "ACME02300: hang.test: the server is stopping: the work with " \
               f"{ca.directory} was abandoned" in log, log[-3000:]
        assert "AH00046" not in log and "ACME02301" not in log, log[-3000:]
    finally:
        ca.close()
