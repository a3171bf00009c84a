"""The HTTP server: ``/up``, ``/version``, ``/``, ``/notes`` and the precompiled ``/assets/*``.

One line per request goes to stdout. SIGTERM (and SIGINT) stop the listener, let in-flight requests
finish for up to ``DRAIN_SECONDS`` and exit 0.
"""

from __future__ import annotations

import html
import json
import mimetypes
import os
import re
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg2
import psycopg2.extensions

from . import APP_ROOT, assets, db
from .config import Config, ConfigError, describe_database

DRAIN_SECONDS = 10.0
DB_TIMEOUT = 3.0  # seconds a request may spend on the database, connecting included
MAX_BODY = 64 * 1024
ASSET_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")

_log_lock = threading.Lock()


def log(message: str) -> None:
    line = f"{datetime.now(UTC).isoformat(timespec='milliseconds').replace('+00:00', 'Z')} {message}\n"
    with _log_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def render_index(config: Config, manifest: dict[str, str], visits: int) -> str:
    css = html.escape(assets.asset_url(manifest, "application.css", config.asset_host))
    js = html.escape(assets.asset_url(manifest, "application.js", config.asset_host))
    release, revision = html.escape(config.release), html.escape(config.app_revision)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>railsdeploy test app (release {release})</title>
<link rel="stylesheet" href="{css}">
<script src="{js}" defer></script>
</head>
<body>
<h1>railsdeploy test app</h1>
<p>Release <span id="release">{release}</span>, revision <span id="revision">{revision}</span>,
environment <span id="rails-env">{html.escape(config.rails_env)}</span>.</p>
<p>Visits: <span id="visits">{visits}</span></p>
</body>
</html>
"""


class App:
    """What the handlers share: settings, the asset manifest and the connection pool."""

    def __init__(self, config: Config, app_root: Path = APP_ROOT):
        self.config = config
        self.assets_dir = app_root / "public" / "assets"
        self.manifest = assets.load_manifest(self.assets_dir)
        self.pool = db.Pool(config.db_params)
        psycopg2.extensions.set_wait_callback(db.wait_with_deadline)  # makes DB_TIMEOUT hold


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.0"  # one request per connection: nothing idles through a shutdown
    server_version = "testapp"
    sys_version = ""

    # --- plumbing ---

    def _respond(self, status: int, body: bytes | str, content_type: str = "text/plain; charset=utf-8",
                 headers: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self._status = status
        self._bytes = len(data)

    def _dispatch(self) -> None:
        started = time.monotonic()
        self._status, self._bytes = 0, 0
        path = urlsplit(self.path).path
        try:
            route = ROUTES.get((self.command if self.command != "HEAD" else "GET", path))
            if route is not None:
                route(self)
            elif path.startswith("/assets/") and self.command in ("GET", "HEAD"):
                self.serve_asset(path.removeprefix("/assets/"))
            elif any(p == path for _, p in ROUTES):
                self._respond(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed\n")
            else:
                self._respond(HTTPStatus.NOT_FOUND, "not found\n")
        except (BrokenPipeError, ConnectionResetError):
            self._status = self._status or 499
        except Exception as exc:  # a bug must not kill the worker thread silently
            log(f"error handling {self.command} {path}: {type(exc).__name__}: {exc}")
            if not self._status:
                self._respond(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error\n")
        finally:
            elapsed = (time.monotonic() - started) * 1000
            log(f'{self.client_address[0]} "{self.command} {self.path}" {self._status} {self._bytes} {elapsed:.1f}ms')

    do_GET = do_HEAD = do_POST = _dispatch

    def log_request(self, code="-", size="-") -> None:  # replaced by the line in _dispatch
        pass

    def log_error(self, fmt, *args) -> None:
        log(f"{self.client_address[0]} error: {fmt % args}")

    @property
    def app(self) -> App:
        return self.server.app

    def _db(self, operation):
        """Run a database operation: (result, True), or (None, False) after answering 503 (unreachable) or 500."""
        try:
            return self.app.pool.run(operation, timeout=DB_TIMEOUT), True
        except db.CONNECTION_ERRORS as exc:
            log(f"database unavailable ({describe_database(self.app.config.db_params)}): "
                f"{(str(exc).strip().splitlines() or [type(exc).__name__])[0]}")
            self._respond(HTTPStatus.SERVICE_UNAVAILABLE, "database unavailable\n")
        except psycopg2.Error as exc:
            log(f"database error: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")
            self._respond(HTTPStatus.INTERNAL_SERVER_ERROR,
                          "database error (is the schema loaded? run bin/rails db:prepare)\n")
        return None, False

    # --- routes ---

    def up(self) -> None:
        if self.app.config.broken:  # APP_BROKEN=1 image: the release whose health check fails
            self._respond(HTTPStatus.INTERNAL_SERVER_ERROR, "broken release (APP_BROKEN=1)\n")
            return
        _, ok = self._db(lambda cur: cur.execute("SELECT 1"))
        if ok:
            self._respond(HTTPStatus.OK, "ok")

    def version(self) -> None:
        self._respond(HTTPStatus.OK, self.app.config.app_revision)

    def index(self) -> None:
        def visit(cur) -> int:
            cur.execute("INSERT INTO visits (path) VALUES (%s)", ("/",))
            cur.execute("SELECT count(*) FROM visits")
            return cur.fetchone()[0]

        visits, ok = self._db(visit)
        if ok:
            page = render_index(self.app.config, self.app.manifest, visits)
            self._respond(HTTPStatus.OK, page, "text/html; charset=utf-8")

    def list_notes(self) -> None:
        def notes(cur) -> list:
            cur.execute("SELECT coalesce(json_agg(n ORDER BY n.id), '[]'::json) FROM notes n")
            return cur.fetchone()[0]

        rows, ok = self._db(notes)
        if ok:
            self._respond(HTTPStatus.OK, json.dumps(rows) + "\n", "application/json")

    def create_note(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._respond(HTTPStatus.BAD_REQUEST, f"a body of at most {MAX_BODY} bytes is required\n")
            return
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        text = (form.get("text") or [""])[0].strip()
        if not text:
            self._respond(HTTPStatus.BAD_REQUEST, "form field text=... is required\n")
            return

        def insert(cur) -> dict:
            cur.execute("INSERT INTO notes (text) VALUES (%s) RETURNING row_to_json(notes)", (text,))
            return cur.fetchone()[0]

        row, ok = self._db(insert)
        if ok:
            self._respond(HTTPStatus.CREATED, json.dumps(row) + "\n", "application/json")

    def serve_asset(self, name: str) -> None:
        path = self.app.assets_dir / name
        if not ASSET_NAME.match(name) or not path.is_file():
            self._respond(HTTPStatus.NOT_FOUND, "not found\n")
            return
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        self._respond(HTTPStatus.OK, path.read_bytes(), content_type,
                      {"Cache-Control": "public, max-age=31536000, immutable"})


ROUTES = {
    ("GET", "/up"): Handler.up,
    ("GET", "/version"): Handler.version,
    ("GET", "/"): Handler.index,
    ("GET", "/notes"): Handler.list_notes,
    ("POST", "/notes"): Handler.create_note,
}


class Server(ThreadingHTTPServer):
    """A thread per request; on shutdown, waits for the requests in flight (``drain``)."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, app: App):
        super().__init__(address, Handler)
        self.app = app
        self._inflight: set[threading.Thread] = set()
        self._inflight_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:
        thread = threading.Thread(target=self._process, args=(request, client_address), daemon=True)
        with self._inflight_lock:
            self._inflight.add(thread)
        thread.start()

    def _process(self, request, client_address) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._inflight_lock:
                self._inflight.discard(threading.current_thread())

    def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for in-flight requests; returns how many were still running."""
        deadline = time.monotonic() + timeout
        while True:
            with self._inflight_lock:
                running = list(self._inflight)
            if not running or time.monotonic() >= deadline:
                return len(running)
            running[0].join(max(0.0, min(0.1, deadline - time.monotonic())))


def serve(config: Config) -> int:
    app = App(config)
    server = Server(("0.0.0.0", config.port), app)
    stopping = threading.Event()

    def on_signal(signum, _frame) -> None:
        if stopping.is_set():
            return
        stopping.set()
        log(f"received {signal.Signals(signum).name}: no new connections, finishing requests in flight")
        threading.Thread(target=server.shutdown, daemon=True).start()  # shutdown() blocks until the loop ends

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log(f"testapp release {config.release} (revision {config.app_revision}, {config.rails_env}) listening on "
        f"0.0.0.0:{config.port}; database {describe_database(config.db_params)}; "
        f"assets {', '.join(sorted(app.manifest.values())) or 'not precompiled'}")
    server.serve_forever(poll_interval=0.2)
    server.socket.close()  # refuse new connections while draining
    left = server.drain(DRAIN_SECONDS)
    app.pool.discard_all()
    if left:
        log(f"stopping with {left} request(s) still running after {DRAIN_SECONDS:.0f}s")
    else:
        log("all requests finished; bye")
    return 0


def main() -> int:
    try:
        config = Config.from_env(os.environ)
    except ConfigError as exc:
        print(f"testapp: error: {exc}", file=sys.stderr)
        return 1
    return serve(config)
