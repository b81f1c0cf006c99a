"""A tiny fake S3 endpoint that fails on purpose: 5xx, throttling, a body cut mid-way, or no answer at all.

It serves GET (with Range) from an in-memory dict of keys and answers every other request with the
configured fault, which is all a fetch needs and all a push meets first. It counts requests, so tests
can prove retries are bounded.
"""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

HOST = "127.0.0.1"
HANG_S = 60.0
RANGE = re.compile(r"bytes=(\d+)-$")
ERRORS = {
    "503": (503, "ServiceUnavailable", "Please reduce your request rate."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
}
# Modes: "ok"; an ERRORS key for every request; "reset-body" cuts every body in half and drops the
# connection; "reset-once" does that to the first GET only; "hang" never answers; "echo" denies every
# request with an error message quoting the request line and all its headers (credentials included),
# as some proxies and misconfigured servers do.
ECHO = "echo"
MODES = ("ok", "reset-body", "reset-once", "hang", ECHO, *ERRORS)


class FaultServer:
    """Serve objects, or fail, on a free local port until stopped."""

    def __init__(self, mode: str = "ok") -> None:
        assert mode in MODES, mode
        self.mode = mode
        self.objects: dict[str, bytes] = {}  # path ("/bucket/key") -> bytes
        self.requests: list[str] = []
        self.cut_once = False  # "reset-once" cuts the first body it serves, whatever was asked before
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = _QuietServer((HOST, 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def record(self, line: str) -> int:
        with self._lock:
            self.requests.append(line)
            return len(self.requests)


class _QuietServer(ThreadingHTTPServer):
    """A client hanging up mid-answer (what vtool does to an over-long body) is expected, not an error to print."""

    def handle_error(self, request: object, client_address: object) -> None:
        """Stay quiet."""


def _handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
            """Stay quiet."""

        def _drain(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)

        def _fail(self) -> None:
            if server.mode == ECHO:
                status, code = 403, "AccessDenied"
                message = escape(f"denied: {self.requestline} " + " ".join(f"{k}={v}" for k, v in self.headers.items()))
            else:
                status, code, message = ERRORS[server.mode]
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                    f"<Message>{message}</Message></Error>").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _answer(self) -> None:
            self._drain()
            server.record(f"{self.command} {self.path} {self.headers.get('Range') or ''}".strip())
            if server.mode == "hang":
                server.stopping.wait(HANG_S)
                self.close_connection = True
                return
            if server.mode in ERRORS or server.mode == ECHO:
                return self._fail()
            data = server.objects.get(self.path.split("?", 1)[0])
            if self.command != "GET" or data is None:
                return self._missing()
            start = 0
            match = RANGE.match(self.headers.get("Range") or "")
            if match:
                start = int(match[1])
            part = data[start:]
            self.send_response(206 if match else 200)
            self.send_header("Content-Length", str(len(part)))
            if match:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            cut = server.mode == "reset-body" or (server.mode == "reset-once" and not server.cut_once)
            if cut:
                server.cut_once = True
                self.wfile.write(part[: len(part) // 2])
                self.wfile.flush()
                time.sleep(0.05)
                self.close_connection = True
                self.connection.close()  # the peer sees the body end early: a reset mid-body
                return
            self.wfile.write(part)

        def _missing(self) -> None:
            body = b'<?xml version="1.0"?>\n<Error><Code>NoSuchKey</Code><Message>missing</Message></Error>'
            self.send_response(404)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _answer  # noqa: N815 - the stdlib's names

    return Handler
