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
import json
import logging
import time
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import htr
from htr.data.image_features import BadImageError
from htr.decode.result_json import result_json
from htr.serve.batcher import Batcher
from htr.serve.upload import HTTPError, Limits, image_bytes, open_image

log = logging.getLogger("htr.serve")
STATIC = Path(__file__).parent / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
REQUEST_TIMEOUT_S = 300  # a request whose batch has not come back by then gets a 503


class RecognitionService:
    """A recogniser, its batcher, and what /info tells about them."""

    def __init__(self, recognizer, model_name, limits=Limits(), max_batch=16, max_wait_ms=5.0):
        self.recognizer, self.model_name, self.limits = recognizer, model_name, limits
        self.decoding = recognizer.describe()
        self.batcher = Batcher(self.decode_batch, max_batch, max_wait_ms)

    def info(self):
        return {"model": self.model_name, "version": htr.__version__, "decoding": self.decoding,
                "limits": self.limits.to_dict(),
                "batching": {"max_batch": self.batcher.max_batch, "max_wait_ms": self.batcher.max_wait * 1000}}

    def recognize(self, name, image):
        """A grayscale PIL image -> its result JSON, decoded in whatever batch it lands in."""
        try:
            feats = self.recognizer.image_features(image)
        except BadImageError as e:
            raise HTTPError(400, f"{name}: {e}") from None
        future = self.batcher.submit((name, image.size, feats))
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
    timeout = 60  # seconds a connection may stall mid-request before its thread gives up
    service: RecognitionService = None  # set by make_server

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/":
            self.send_static("index.html")
        elif path.startswith("/static/"):
            self.send_static(path[len("/static/"):])
        elif path == "/info":
            self.send_json(200, self.service.info())
        elif path == "/stats":
            self.send_json(200, self.service.batcher.stats())
        elif path == "/health":
            self.send_json(200, {"status": "ok"})
        else:
            self.send_json(404, {"error": f"no such page: {path}"})

    def do_POST(self):
        started, self.body_read = time.perf_counter(), False
        url = urlsplit(self.path)
        try:
            if url.path != "/recognize":
                raise HTTPError(404, f"no such endpoint: POST {url.path} (use POST /recognize)")
            body = self.read_body()
            default = parse_qs(url.query).get("name", ["upload"])[0]
            name, data = image_bytes(body, self.headers.get("Content-Type"), default)
            result = self.service.recognize(name, open_image(data, name, self.service.limits))
        except HTTPError as e:
            self.close_connection = self.close_connection or not self.body_read  # unread bytes end keep-alive
            self.send_json(e.status, {"error": e.message})
            return
        except Exception:  # noqa: BLE001 - the log has the traceback, the client a one-line message
            log.exception("POST /recognize failed")
            self.close_connection = self.close_connection or not self.body_read
            self.send_json(500, {"error": "internal error while decoding (the server's log has the details)"})
            return
        self.send_json(200, result)
        log.info("recognized %s in %.3f s", name, time.perf_counter() - started)

    def do_PUT(self):
        self.close_connection = True
        self.send_json(405, {"error": f"method {self.command} not allowed (GET the page, POST /recognize)"})

    do_DELETE = do_PATCH = do_PUT

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise HTTPError(411, "chunked uploads are not accepted: send a Content-Length")
        length = self.headers.get("Content-Length")
        if length is None:
            raise HTTPError(411, "no Content-Length: send the image as the request body or a multipart form")
        try:
            length = int(length)
        except ValueError:
            raise HTTPError(400, f"bad Content-Length {length!r}") from None
        limit = self.service.limits.max_upload_bytes
        if length > limit:
            raise HTTPError(413, f"upload of {length} bytes exceeds the server's limit of {limit} bytes")
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            raise HTTPError(400, f"upload ended after {len(body)} of {length} bytes")
        self.body_read = True
        return body

    def send_static(self, name):
        path = STATIC / name
        if name not in {p.name for p in STATIC.iterdir()} or path.suffix not in CONTENT_TYPES:
            self.send_json(404, {"error": f"no such file: /static/{name}"})  # no path leaves STATIC
            return
        self.send_bytes(200, path.read_bytes(), CONTENT_TYPES[path.suffix])

    def send_json(self, status, obj):
        self.send_bytes(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def send_bytes(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):  # the access log goes where the server's log goes
        log.info("%s %s", self.address_string(), fmt % args)


def make_server(service, host="127.0.0.1", port=8000):
    """A ThreadingHTTPServer bound to (host, port) (port 0: any free one) serving `service`."""
    handler = type("ServiceHandler", (Handler,), {"service": service})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
