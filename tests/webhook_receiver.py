"""A real HTTP server on loopback standing in for the clinic's system."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List


class WebhookReceiver:
    """Records every POST; answers `status` (set it to 503 to play a system that is down)."""

    def __init__(self) -> None:
        self.status = 200
        self.received: List[Dict[str, Any]] = []  # {"key", "body", "status"} per attempt
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with receiver._lock:
                    status = receiver.status
                    receiver.received.append(
                        {"key": self.headers.get("Idempotency-Key"), "body": body, "status": status}
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # keep the test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callbacks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def accepted(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [r for r in self.received if 200 <= r["status"] < 300]

    def attempts(self) -> List[Dict[str, Any]]:
        with self._lock:
            return list(self.received)
