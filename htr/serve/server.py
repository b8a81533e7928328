"""`htr serve`'s HTTP server: the web page, the JSON API, and the recogniser behind a batcher.

The standard library's ThreadingHTTPServer is enough: one thread per connection reads the upload
and makes its features (Pillow releases the GIL), and one batcher thread decodes. No dependency,
nothing to configure, and the server speaks HTTP/1.1 keep-alive.

    GET  /            the page (htr/serve/static/)
    GET  /info        model, decoding settings, limits, batching
    GET  /stats       batches decoded and their sizes
    GET  /health      {"status": "ok"}
    POST /recognize   an image (multipart field "image", or the raw bytes) -> result_json's fields
"""
import ipaddress
import json
import logging
import sys
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import htr
from htr.data.image_features import BadImageError
from htr.decode.result_json import result_json
from htr.serve.batcher import Batcher
from htr.serve.upload import CONTROL, HTTPError, Limits, image_bytes, open_image

log = logging.getLogger("htr.serve")
STATIC = Path(__file__).parent / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
REQUEST_TIMEOUT_S = 300  # a request whose batch has not come back by then gets a 503
DISCARD_MAX_BYTES = 64 * 2 ** 20  # a refused upload up to this size is read and dropped, not cut off


class RecognitionService:
    """A recogniser, its batcher, and what /info tells about them."""

    def __init__(self, recognizer, model_name, limits=Limits(), max_batch=16, max_wait_ms=50.0):
        self.recognizer, self.model_name, self.limits = recognizer, model_name, limits
        self.decoding = recognizer.describe()
        self.connections, self.lock = 0, threading.Lock()  # open client connections
        self.batcher = Batcher(self.decode_batch, max_batch, max_wait_ms, more_coming=self.others_connected)

    def others_connected(self, gathered):
        """Whether clients beyond those of the `gathered` requests are connected (and may send)."""
        return self.connections > gathered + self.batcher.pending.qsize()

    def connected(self, change):
        with self.lock:
            self.connections += change

    def info(self):
        return {"model": self.model_name, "version": htr.__version__, "decoding": self.decoding,
                "limits": self.limits.to_dict(),
                "batching": {"max_batch": self.batcher.max_batch, "max_wait_ms": self.batcher.max_wait * 1000}}

    def features(self, name, image):
        """A grayscale PIL image -> what the batcher decodes."""
        w, h = image.size
        if not w or not h:
            raise HTTPError(400, f"{name}: empty image ({w}x{h})")
        frames = max(int(w / h * f.height * f.width_factor) for f in self.recognizer.frontends())
        if frames > self.limits.max_frames:
            raise HTTPError(413, f"{name}: a {w}x{h} image makes {frames} feature frames, over the server's limit "
                                 f"of {self.limits.max_frames} (send one text line)")
        try:
            return name, image.size, self.recognizer.image_features(image)
        except BadImageError as e:
            raise HTTPError(400, f"{name}: {e}") from None

    def recognize(self, item):
        """features()' item -> its result JSON, decoded in whatever batch it lands in."""
        name = item[0]
        future = self.batcher.submit(item)
        try:
            return future.result(timeout=REQUEST_TIMEOUT_S)
        except FutureTimeout:
            raise HTTPError(503, f"{name}: not decoded within {REQUEST_TIMEOUT_S} s; the server is overloaded") from None

    def decode_batch(self, items):
        names = [name for name, _, _ in items]
        nbests = self.recognizer([feats for _, _, feats in items], names=names, positions=True)
        return [result_json(name, size, feats, nbest, self.decoding)
                for (name, size, feats), nbest in zip(items, nbests)]

    def close(self):
        self.batcher.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"htr/{htr.__version__}"
    timeout = 60  # seconds a connection may stall mid-request before it gets a 408
    service: RecognitionService = None  # set by make_server

    def setup(self):
        super().setup()
        self.recognizing = False  # counted among the clients a filling batch waits for

    def finish(self):
        if self.recognizing:
            self.service.connected(-1)
        super().finish()

    def parse_request(self):
        """A server on loopback answers only requests addressed to loopback: a web page elsewhere
        cannot reach it through a DNS name rebound to 127.0.0.1."""
        if not super().parse_request():
            return False
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        if self.server.loopback_only and host and host != "localhost" and not is_loopback(host):
            self.close_connection = True
            self.send_json(403, {"error": f"this server answers requests to localhost only, not to {host!r}"})
            return False
        return True

    def do_GET(self):
        path = urlsplit(self.path).path
        if self.headers.get("Content-Length", "0") != "0":
            self.close_connection = True  # a GET's body would be read as the next request
        if path == "/":
            self.send_static("index.html")
        elif path.startswith("/static/"):
            self.send_static(path[len("/static/"):])
        elif path == "/info":
            self.send_json(200, self.service.info())
        elif path == "/stats":
            self.send_json(200, self.service.batcher.stats())
        elif path == "/health":
            alive = self.service.batcher.worker.is_alive()
            self.send_json(200 if alive else 503, {"status": "ok" if alive else "decoder stopped"})
        else:
            self.send_json(404, {"error": f"no such page: {path}"})

    def do_POST(self):
        started, self.body_left = time.perf_counter(), None  # bytes of the body still unread (None: unknown)
        url = urlsplit(self.path)
        try:
            self.body_left = self.content_length()
            if url.path != "/recognize":
                raise HTTPError(404, f"no such endpoint: POST {url.path} (use POST /recognize)")
            if not self.recognizing:
                self.recognizing = True
                self.service.connected(+1)
            name = parse_qs(url.query).get("name", ["upload"])[0]
            name, data = image_bytes(self.read_body(), self.headers.get("Content-Type"), name)
            item = self.service.features(name, open_image(data, name, self.service.limits))
            result = self.service.recognize(item)
        except HTTPError as e:
            self.refuse(e.status, e.message)
            return
        except Exception:  # noqa: BLE001 - the log has the traceback, the client a one-line message
            log.exception("POST /recognize failed")
            self.refuse(500, "internal error while decoding (the server's log has the details)")
            return
        self.send_json(200, result)
        log.info("recognized %s in %.3f s", name, time.perf_counter() - started)

    def not_allowed(self):
        self.close_connection = True
        self.send_json(405, {"error": f"method {self.command} not allowed (GET the page, POST /recognize)"})

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = not_allowed

    def content_length(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise HTTPError(411, "chunked uploads are not accepted: send a Content-Length")
        values = self.headers.get_all("Content-Length") or []
        if not values:
            raise HTTPError(411, "no Content-Length: send the image as the request body or a multipart form")
        if len(values) > 1 or not (values[0].isascii() and values[0].isdigit()):
            raise HTTPError(400, f"bad Content-Length {', '.join(values)!r}")
        return int(values[0])

    def read_body(self):
        limit = self.service.limits.max_upload_bytes
        if self.body_left > limit:
            raise HTTPError(413, f"upload of {self.body_left} bytes exceeds the server's limit of {limit} bytes")
        length, self.body_left = self.body_left, None  # unknown until read whole
        try:
            body = self.rfile.read(length)
        except OSError:  # the socket timed out or was dropped mid-upload
            raise HTTPError(408, f"upload stalled for {self.timeout} s or was dropped") from None
        if len(body) < length:
            raise HTTPError(400, f"upload ended after {len(body)} of {length} bytes")
        self.body_left = 0
        return body

    def refuse(self, status, message):
        """An error answer that the client can read: an unread body is read and dropped first (a
        client still sending would not see the answer), or the connection closed after it."""
        if self.body_left is None or self.body_left > DISCARD_MAX_BYTES:
            self.close_connection = True
        elif self.body_left:
            try:
                while self.body_left > 0 and (chunk := self.rfile.read(min(self.body_left, 1 << 16))):
                    self.body_left -= len(chunk)
            except OSError:
                pass
            self.close_connection = self.close_connection or self.body_left > 0
        self.send_json(status, {"error": message})

    def handle_expect_100(self):
        """Refuse an oversized upload before the client sends it (curl asks first for large ones)."""
        length, limit = self.headers.get("Content-Length", ""), self.service.limits.max_upload_bytes
        if length.isascii() and length.isdigit() and int(length) > limit:
            self.close_connection = True
            self.send_json(413, {"error": f"upload of {length} bytes exceeds the server's limit of {limit} bytes"})
            return False
        return super().handle_expect_100()

    def send_static(self, name):
        path = STATIC / name
        if name not in {p.name for p in STATIC.iterdir()} or path.suffix not in CONTENT_TYPES:
            self.send_json(404, {"error": f"no such file: /static/{name}"})  # no path leaves STATIC
            return
        self.send_bytes(200, path.read_bytes(), CONTENT_TYPES[path.suffix])

    def send_json(self, status, obj):
        self.send_bytes(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def send_bytes(self, status, body, content_type):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError as e:  # the client went away: nothing to answer
            log.info("%s: answer not delivered (%s)", self.address_string(), e)
            self.close_connection = True

    def log_message(self, fmt, *args):  # the access log goes where the server's log goes
        log.info("%s %s", self.address_string(), (fmt % args).translate(CONTROL))


def is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connect at once under load

    def server_bind(self):
        super().server_bind()
        self.loopback_only = is_loopback(self.server_address[0])

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # a dropped or stalled connection: one line, no traceback
            log.info("%s: connection ended (%s)", client_address[0], error)
        else:
            log.exception("request from %s failed", client_address[0])


def make_server(service, host="127.0.0.1", port=8000, io_timeout=60):
    """A threading HTTP server bound to (host, port) (port 0: any free one) serving `service`;
    a connection that stalls `io_timeout` s mid-request is answered 408 and closed."""
    handler = type("ServiceHandler", (Handler,), {"service": service, "timeout": io_timeout})
    return Server((host, port), handler)
