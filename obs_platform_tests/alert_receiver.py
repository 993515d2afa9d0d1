"""A real local webhook receiver for the alert tests: http.server in a thread, recording every request."""

from __future__ import annotations

import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """POSTs land in ``requests`` (path, headers, parsed body). ``status`` is what it answers; ``hold`` seconds
    it waits before answering."""

    def __init__(self, port: int = 0, status: int = 200, hold: float = 0.0):
        self.requests: queue.Queue = queue.Queue()
        self.received: list[dict] = []
        self.status = status
        self.hold = hold
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                record = {"path": self.path, "headers": dict(self.headers), "body": json.loads(body),
                          "at": time.time()}
                owner.received.append(record)
                owner.requests.put(record)
                if owner.hold:
                    time.sleep(owner.hold)
                try:
                    self.send_response(owner.status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender went away (killed, or timed out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def next(self, timeout: float = 15.0) -> dict:
        return self.requests.get(timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
