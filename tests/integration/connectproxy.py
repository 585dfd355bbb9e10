"""A small HTTP CONNECT proxy for the tests (standard library, threaded, 127.0.0.1 on a free
port): it records each CONNECT target and the Proxy-Authorization it got, and answers 407
unless the request carries the expected credentials (when it expects some)."""
import base64
import select
import socket
import socketserver
import ssl
import threading


class _Handler(socketserver.StreamRequestHandler):
    def setup(self):
        tls = self.server.proxy.tls
        if tls:
            # An https:// proxy: TLS to the proxy itself, the CONNECT inside it.
            self.request.settimeout(10)
            self.request = tls.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
            self.connection = self.request
        super().setup()

    def handle(self):
        proxy = self.server.proxy
        head = []
        while True:
            line = self.rfile.readline(8192)
            if not line or line in (b"\r\n", b"\n"):
                break
            head.append(line.decode("latin-1").rstrip("\r\n"))
            if len(head) > 100:
                return
        if not head:
            return
        parts = head[0].split()
        auth = None
        for h in head[1:]:
            name, _, value = h.partition(":")
            if name.strip().lower() == "proxy-authorization":
                auth = value.strip()
        with proxy.lock:
            proxy.seen.append((parts[0] if parts else "", parts[1] if len(parts) > 1 else "",
                               auth))
        if len(parts) < 2 or parts[0] != "CONNECT":
            self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        if proxy.expected_auth and auth != proxy.expected_auth:
            self.wfile.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                             b"Proxy-Authenticate: Basic realm=\"test\"\r\n"
                             b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            return
        host, _, port = parts[1].rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except (OSError, ValueError):
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        client = self.connection
        pending = self.rfile.peek() if hasattr(self.rfile, "peek") else b""
        if pending:
            upstream.sendall(self.rfile.read(len(pending)))
        if isinstance(client, ssl.SSLSocket):
            self._relay_tls(client, upstream, proxy)
            return
        socks = [client, upstream]
        try:
            while not proxy.stopping.is_set():
                ready, _, _ = select.select(socks, [], [], 0.5)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is client else client).sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()


    @staticmethod
    def _relay_tls(client, upstream, proxy):
        """select() does not see what an SSL socket has buffered: read it with a timeout."""
        def up():
            try:
                while not proxy.stopping.is_set():
                    data = upstream.recv(65536)
                    if not data:
                        break
                    client.sendall(data)
            except OSError:
                pass
        t = threading.Thread(target=up, daemon=True)
        t.start()
        try:
            while not proxy.stopping.is_set():
                data = client.recv(65536)
                if not data:
                    break
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()
            t.join(5)


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a client refusing the proxy's certificate is what a test may want


class ConnectProxy:
    """proxy = ConnectProxy(user="u", password="p"); proxy.port; proxy.seen (method, target,
    Proxy-Authorization) in order; proxy.stop()."""

    def __init__(self, user=None, password=None, port=0, tls_cert=None, tls_key=None):
        """tls_cert, tls_key: PEM files; the proxy then speaks TLS (an https:// proxy)."""
        self.seen = []
        self.tls = None
        if tls_cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(tls_cert, tls_key)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.expected_auth = None
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.expected_auth = f"Basic {token}"
        self.server = _Server(("127.0.0.1", port), _Handler)
        self.server.proxy = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def targets(self):
        with self.lock:
            return [t for m, t, _ in self.seen if m == "CONNECT"]

    def auths(self):
        with self.lock:
            return [a for _, _, a in self.seen]

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
