"""The drawing pad's HTTP routes, on the standard library's ``http.server``.

``GET /`` is the page and ``GET /static/NAME`` its script and style sheet (package data, read once);
``GET /api/info`` the model's classes and layers; ``POST /api/predict`` takes a picture (the request body,
any Content-Type but JSON) or JSON ``{"png": BASE64}`` or ``{"pixels": [784 values in [0, 1]]}`` and
answers the label, its probability, every class's probability and the 28x28 image the model saw.

Every failure is a JSON ``{"error": ..., "status": ...}`` with a 4xx (5xx for a fault of ours) and closes
that connection only: the server goes on serving. Bodies over ``MAX_BODY`` are refused unread.
"""

from __future__ import annotations

import json
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from mnist_accel.serve.payloads import USAGE, answer
from mnist_accel.serve.predictor import BadInput, Predictor

MAX_BODY = 1_000_000  # bytes: a drawn PNG is a few kilobytes; a 1 MB picture is already far larger than needed
# A refused body up to this size is read and dropped before the answer, so that closing the connection does
# not reset it under the client before the client has read the error; a larger one is not worth reading.
DRAIN_LIMIT = 16 * MAX_BODY
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
# The page loads nothing from elsewhere (no CDN), so the browser is told to refuse anything that is not ours.
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def static_files() -> dict[str, tuple[bytes, str]]:
    """The page's files shipped in the package, by URL path, with their content types."""
    folder = resources.files("mnist_accel.serve") / "static"
    files = {}
    for item in folder.iterdir():
        suffix = "." + item.name.rsplit(".", 1)[-1]
        if item.is_file() and suffix in TYPES:
            files[f"/static/{item.name}"] = (item.read_bytes(), TYPES[suffix])
    files["/"] = files["/static/index.html"]
    return files


class HttpError(Exception):
    """An answer other than 200: its status and one-line message."""

    def __init__(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}


class PadHandler(BaseHTTPRequestHandler):
    """One connection's requests; the server gives it ``predictor``, ``files`` and ``log_requests``."""

    server_version = "mnist-accel-pad"
    protocol_version = "HTTP/1.1"  # keep-alive: the page sends a request per stroke segment
    timeout = 30  # seconds a client may stay silent mid-request or between requests before it is dropped
    # Headers and body go out as two writes: with Nagle's algorithm the body would wait for the client's
    # delayed acknowledgement of the headers, a pause on every answer of a keep-alive connection.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._route("GET")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_OPTIONS(self) -> None:
        self._route("OPTIONS")

    # --- routing -----------------------------------------------------------------------------------------

    def _route(self, method: str) -> None:
        self._body_read = False
        path = urlsplit(self.path).path
        try:
            if path in self.server.files:
                self._allow(method, "GET")
                body, ctype = self.server.files[path]
                self._send(HTTPStatus.OK, body, ctype, head=method == "HEAD",
                           extra={"Content-Security-Policy": POLICY} if ctype.startswith("text/html") else None)
            elif path == "/api/info":
                self._allow(method, "GET")
                self._json(HTTPStatus.OK, self.server.predictor.info(), head=method == "HEAD")
            elif path == "/api/predict":
                self._allow(method, "POST")
                self._json(HTTPStatus.OK, self._predict(self.server.predictor))
            else:
                raise HttpError(HTTPStatus.NOT_FOUND, f"no such page: {path} (the pad is at /, its API at "
                                "/api/info and /api/predict)")
        except HttpError as exc:
            self._error(exc.status, str(exc), exc.headers)
        except Exception as exc:  # a fault of ours: this request fails, the server stays up
            print(f"mnist_accel.serve: error: {method} {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"the server failed: {type(exc).__name__}")

    @staticmethod
    def _allow(method: str, allowed: str) -> None:
        methods = ("GET", "HEAD") if allowed == "GET" else (allowed,)
        if method not in methods:
            raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed here; use {allowed}",
                            {"Allow": ", ".join(methods)})

    # --- the prediction ----------------------------------------------------------------------------------

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length; chunked bodies are not accepted")
        length = self.headers.get("Content-Length")
        if length is None:
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, f"send a Content-Length header; {USAGE}")
        if not length.strip().isdigit():
            raise HttpError(HTTPStatus.BAD_REQUEST, f"Content-Length {length!r} is not a number of bytes")
        size = int(length)
        if size > MAX_BODY:
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                            f"the body is {size:,} bytes, over the limit of {MAX_BODY:,}; send a smaller picture")
        body = self.rfile.read(size)
        self._body_read = True
        if len(body) < size:
            raise HttpError(HTTPStatus.BAD_REQUEST, f"the body ended after {len(body)} of {size} bytes")
        if not body:
            raise HttpError(HTTPStatus.BAD_REQUEST, f"the body is empty; {USAGE}")
        return body

    def _predict(self, predictor: Predictor) -> dict[str, Any]:
        body = self._body()
        try:
            return answer(predictor, body, self.headers.get_content_type())
        except BadInput as exc:
            raise HttpError(HTTPStatus.BAD_REQUEST, str(exc)) from None

    # --- answers -----------------------------------------------------------------------------------------

    def _json(self, status: HTTPStatus, payload: dict, head: bool = False) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", head=head)

    def _error(self, status: HTTPStatus, message: str, extra: dict[str, str] | None = None) -> None:
        self.close_connection = True  # the request's body may be unread: the connection cannot be reused
        self._discard_body()
        body = json.dumps({"error": message, "status": int(status)}).encode()
        self._send(status, body, "application/json", head=self.command == "HEAD", extra=extra)

    def _send(self, status: HTTPStatus, body: bytes, ctype: str, head: bool = False,
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _discard_body(self) -> None:
        headers = getattr(self, "headers", None)  # None where http.server refused the request line itself
        length = headers.get("Content-Length", "") if headers is not None else ""
        if getattr(self, "_body_read", True) or not length.strip().isdigit() or int(length) > DRAIN_LIMIT:
            return
        self._body_read, left = True, int(length)
        try:
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:  # the client stopped sending (or timed out): the answer still goes out
            pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, headers too long, an unknown method) as
        JSON, like ours."""
        status = HTTPStatus(code)
        self._error(status, message or status.phrase)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        if self.server.log_requests:
            super().log_message(format, *args)

