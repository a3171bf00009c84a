"""A counting HTTP proxy in front of the lab's moto: how many AWS API calls a run makes.

Ansible is pointed at the proxy (``-e aws_endpoint_url=...``); every request is forwarded to
moto unchanged and counted by service and action.
"""

from __future__ import annotations

import collections
import http.client
import http.server
import re
import threading
import urllib.parse

_SERVICE_RE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")


class CallCounter:
    def __init__(self, upstream: str):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.calls: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                counter.count(self.headers.get("Authorization", ""), self.headers.get("X-Amz-Target", ""),
                              self.path, body)
                conn = http.client.HTTPConnection(counter.upstream.hostname, counter.upstream.port, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

            def log_message(self, *_args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self, auth: str, target: str, path: str, body: bytes) -> None:
        m = _SERVICE_RE.search(auth)
        service = m.group(1) if m else "unknown"
        action = target.rsplit(".", 1)[-1] if target else ""
        if not action:
            params = urllib.parse.parse_qs(body.decode(errors="replace")) if body else {}
            action = (params.get("Action") or [""])[0]
        if not action:
            action = path.split("?")[0]
        with self._lock:
            self.calls[f"{service}:{action}"] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def __enter__(self) -> CallCounter:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()
