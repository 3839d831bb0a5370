"""A real HTTP server on 127.0.0.1 standing in for Slack (and later Dynamics and push endpoints):
it records every request and answers with a configurable status after a configurable delay."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: The client's (host, port): requests on one kept-alive connection share it.
    client: tuple[str, int] = ("", 0)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpPeer:
    status: int = 200
    #: Answers for the next requests, in order, before falling back to `status`.
    statuses: list[int] = field(default_factory=list)
    delay_seconds: float = 0.0
    #: Answer the first this-many requests at once, and only the later ones after `delay_seconds`.
    delay_after_requests: int = 0
    response_body: bytes = b"ok"
    #: HTTP/1.1 with keep-alive (a client may reuse its connection), instead of one request per connection.
    keep_alive: bool = False
    requests: list[RecordedRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HttpPeer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if peer.keep_alive else "HTTP/1.0"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                with peer._lock:
                    peer.requests.append(
                        RecordedRequest("POST", self.path, dict(self.headers), body, tuple(self.client_address[:2]))
                    )
                    status = peer.statuses.pop(0) if peer.statuses else peer.status
                    delay = peer.delay_seconds if len(peer.requests) > peer.delay_after_requests else 0.0
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(peer.response_body)))
                    self.end_headers()
                    self.wfile.write(peer.response_body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        class Server(ThreadingHTTPServer):
            # The default listen backlog (5) refuses connections when a client opens 32 at once on a
            # loaded machine: a real gateway would not, and the tests then flaked.
            request_queue_size = 256

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
