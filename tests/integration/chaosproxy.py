"""A small HTTPS reverse proxy in front of pebble that can fail on purpose: refuse, answer
500, 503 or 429 with Retry-After, or send garbage, for every request or for one path. It can
also hold requests (all, or those for one path) until the test releases them, so that a test
knows where the client is: waiting for the CA, and add headers to pebble's answers for one path
(a Retry-After pebble never sends). With `ari` set to a suggested window, it also
plays the CA's renewal information (RFC 9773), which Debian's pebble 2.4 lacks: the directory
names its renewalInfo and GET <renewalInfo>/<certID> answers the window. With `profiles` set, it
plays a CA with profiles (draft-ietf-acme-profiles), which pebble 2.4 also lacks: the directory
lists them in meta.profiles (pebble ignores the `profile` of an order). The payload of every
signed request is recorded (`payloads`, `new_orders()`). Pebble's own address
in bodies and headers is rewritten to the proxy's, so clients keep coming back through it. Test
code only; loopback only."""
import base64
import http.server
import json
import ssl
import threading
import urllib.error
import urllib.request

import acmetest


def _jws_payload(body):
    """The payload of a flattened JWS request body as JSON; None for POST-as-GET or when the
    body is not a JWS."""
    try:
        raw = json.loads(body)["payload"]
        if not raw:
            return None
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, KeyError, TypeError):
        return None


class ChaosProxy:
    def __init__(self, pebble):
        self.pebble = pebble
        self.port = acmetest.free_port()
        self.mode = "pass"          # pass | 500 | 503 | 429 | garbage
        self.only_path = None       # fail only requests whose path contains this
        self.retry_after = None
        self.detail = "injected by the test proxy"  # the problem's detail (any text)
        self.ari = None             # {"start": RFC 3339, "end": RFC 3339}: renewal information
        self.ari_explanation = None  # its explanationURL, when set
        self.pass_headers = {}      # path part -> {header: value} added to answers passed on
        self.profiles = None        # {name: description}: the directory's meta.profiles
        self.payloads = []          # (path, JWS payload as JSON or None) of each POST
        self.answered = []          # (path, status, payload) of each POST pebble answered
        self.requests = []
        self.held = []              # (method, path) of each request held, in order
        self._hold_path = None      # hold() is in force when not None ("" = every request)
        self._released = threading.Event()
        self._held_one = threading.Event()
        self.upstream = f"https://127.0.0.1:{pebble.port}"
        self.base = f"https://127.0.0.1:{self.port}"
        self.directory = f"{self.base}/dir"
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.requests.append((self.command, self.path))
                if self.command == "POST" and body:
                    proxy.payloads.append((self.path, _jws_payload(body)))
                hold = proxy._hold_path
                if hold is not None and hold in self.path and not proxy._released.is_set():
                    proxy.held.append((self.command, self.path))
                    proxy._held_one.set()
                    proxy._released.wait(timeout=300)
                failing = proxy.mode != "pass" and (
                    proxy.only_path is None or proxy.only_path in self.path)
                if failing:
                    return self.fail()
                if proxy.ari and self.path.startswith("/renewal-info/"):
                    info = {"suggestedWindow": proxy.ari}
                    if proxy.ari_explanation:
                        info["explanationURL"] = proxy.ari_explanation
                    return self.answer(200, json.dumps(info).encode(), "application/json")
                req = urllib.request.Request(proxy.upstream + self.path, data=body,
                                             method=self.command)
                for k in ("Content-Type",):
                    if self.headers.get(k):
                        req.add_header(k, self.headers[k])
                # pebble checks the JWS url against its own address as the client named it
                req.add_header("Host", self.headers.get("Host", ""))
                ctx = ssl.create_default_context(cafile=proxy.pebble.ca_file)
                try:
                    resp = urllib.request.urlopen(req, context=ctx, timeout=10)
                    status, headers, data = resp.status, resp.getheaders(), resp.read()
                except urllib.error.HTTPError as e:
                    status, headers, data = e.code, e.headers.items(), e.read()
                if self.command == "POST" and body:
                    proxy.answered.append((self.path, status, _jws_payload(body)))
                data = data.replace(proxy.upstream.encode(), proxy.base.encode())
                if (proxy.ari or proxy.profiles is not None) and self.path == "/dir" and \
                        status == 200:
                    d = json.loads(data)
                    if proxy.ari:
                        d["renewalInfo"] = proxy.base + "/renewal-info"
                    if proxy.profiles is not None:
                        d.setdefault("meta", {})["profiles"] = proxy.profiles
                    data = json.dumps(d).encode()
                self.send_response(status)
                for k, v in headers:
                    if k.lower() in ("content-length", "connection", "transfer-encoding"):
                        continue
                    self.send_header(k, v.replace(proxy.upstream, proxy.base))
                for part, extra in list(proxy.pass_headers.items()):
                    if part in self.path:
                        for k, v in extra.items():
                            self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def answer(self, status, data, ctype):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def fail(self):
                mode = proxy.mode
                if mode == "garbage":
                    data = b"<html>this is not the ACME server you are looking for</html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                else:
                    status = int(mode)
                    kind = {"500": "serverInternal", "503": "serverInternal",
                            "429": "rateLimited"}[mode]
                    data = json.dumps({"type": "urn:ietf:params:acme:error:" + kind,
                                       "detail": proxy.detail,
                                       "status": status}).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/problem+json")
                    if proxy.retry_after:
                        self.send_header("Retry-After", str(proxy.retry_after))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_HEAD = handle_any

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True  # a held request must not hold up stop()

            def handle_error(self, request, client_address):
                pass  # a client killed while held: nobody is left to answer

        self.server = Server(("127.0.0.1", self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pebble.listener["cert"], pebble.listener["key"])
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def new_orders(self):
        """The payloads of the newOrder requests (pebble's /order-plz) pebble accepted (201), in
        order: a request pebble refused with badNonce (5% of nonces) and the client sent again
        is one order, not two."""
        return [p for path, status, p in self.answered if path == "/order-plz" and status == 201]

    def hold(self, only_path=""):
        """From now on, requests whose path contains only_path (every request by default) wait
        in the proxy until release()."""
        self._released.clear()
        self._held_one.clear()
        self._hold_path = only_path

    def wait_held(self, timeout=30.0):
        """True once a request is held (the client waits for the CA), False after timeout."""
        return self._held_one.wait(timeout)

    def release(self):
        """Held requests go on to pebble (and their answers back, if anyone still waits for
        them); new ones pass."""
        self._hold_path = None
        self._released.set()

    def stop(self):
        self.release()
        self.server.shutdown()
        self.server.server_close()
