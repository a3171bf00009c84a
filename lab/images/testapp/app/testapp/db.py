"""PostgreSQL access: a small self-healing connection pool (the schema itself is in ``schema``).

Every connection has a short connect timeout and TCP timeouts, so a stopped or moved server turns
into an error within seconds instead of a hung request. A failed connection is thrown away together
with the idle ones (after a server restart they are all dead), and an operation that failed on a
reused connection is tried once more on a fresh one: the app recovers by itself when Postgres returns.
The web server also installs ``wait_with_deadline``, which bounds each operation in time even when the
server accepts packets but never answers.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import psycopg2
import psycopg2.extensions

T = TypeVar("T")

# libpq keywords added unless DATABASE_URL sets them.
CONNECT_DEFAULTS: dict[str, str | int] = {
    "connect_timeout": 2,
    "application_name": "testapp",
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 5000,  # ms: unacknowledged data on a vanished server fails the query
    "options": "-c statement_timeout=5000",
}

CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


def connect(params: Mapping[str, str | int], *, autocommit: bool = True) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(**{**CONNECT_DEFAULTS, **params})
    conn.autocommit = autocommit
    return conn


class DatabaseTimeout(psycopg2.OperationalError):
    """The database did not answer within the operation's time limit."""


_local = threading.local()  # .deadline: time.monotonic() value the current operation must end by


def wait_with_deadline(conn: psycopg2.extensions.connection) -> None:
    """psycopg2 wait callback honouring the calling thread's deadline.

    libpq's timeouts only cover connecting and a dead network: a server that accepts packets but does
    not answer (frozen, overloaded, stuck on a full disk) would hold a request forever. With this callback
    installed (``psycopg2.extensions.set_wait_callback``) every wait, connecting included, ends by the
    deadline; the connection is then thrown away. Threads without a deadline wait as long as it takes.
    """
    deadline = getattr(_local, "deadline", None)
    poller = select.poll()
    registered = None
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        if state == psycopg2.extensions.POLL_READ:
            events = select.POLLIN
        elif state == psycopg2.extensions.POLL_WRITE:
            events = select.POLLOUT
        else:
            raise psycopg2.OperationalError(f"unexpected connection state {state}")
        if registered != events:
            if registered is not None:
                poller.unregister(conn.fileno())
            poller.register(conn.fileno(), events)
            registered = events
        if deadline is None:
            poller.poll()
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(remaining * 1000):
            raise DatabaseTimeout("the database did not answer in time")


class Pool:
    """Thread-safe pool of autocommit connections: at most ``max_size`` in use, ``max_idle`` kept open."""

    def __init__(self, params: Mapping[str, str | int], max_size: int = 16, max_idle: int = 8):
        self._params = dict(params)
        self._max_idle = max_idle
        self._idle: list[psycopg2.extensions.connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_size)

    def _checkout(self) -> tuple[psycopg2.extensions.connection, bool]:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn, True
        return connect(self._params), False

    def _checkin(self, conn: psycopg2.extensions.connection) -> None:
        if conn.closed or conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            _close(conn)
            return
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        _close(conn)

    def discard_all(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close(conn)

    def run(self, operation: Callable[[psycopg2.extensions.cursor], T], timeout: float | None = None) -> T:
        """Run ``operation(cursor)``; a connection error on a reused connection is retried once on a new one.

        ``timeout`` bounds the whole call (waiting for a free connection, connecting, the retry) when the
        ``wait_with_deadline`` callback is installed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._slots.acquire(timeout=timeout):
            raise DatabaseTimeout("no free database connection in time")
        _local.deadline = deadline
        try:
            conn, reused = self._checkout()
            try:
                return self._run_on(conn, operation)
            except CONNECTION_ERRORS:
                if not reused or (deadline is not None and time.monotonic() >= deadline):
                    raise
            return self._run_on(connect(self._params), operation)
        finally:
            _local.deadline = None
            self._slots.release()

    def _run_on(self, conn: psycopg2.extensions.connection, operation: Callable[[psycopg2.extensions.cursor], T]) -> T:
        try:
            with conn.cursor() as cur:
                result = operation(cur)
        except CONNECTION_ERRORS:
            _close(conn)
            self.discard_all()
            raise
        except BaseException:
            self._checkin(conn)
            raise
        self._checkin(conn)
        return result


def _close(conn: psycopg2.extensions.connection) -> None:
    try:
        conn.close()
    except Exception:  # closing a broken connection may fail in any way
        pass


def applied_versions(cur: psycopg2.extensions.cursor) -> set[str]:
    cur.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
    if not cur.fetchone()[0]:
        return set()
    cur.execute("SELECT version FROM schema_migrations")
    return {row[0] for row in cur.fetchall()}


def table_exists(cur: psycopg2.extensions.cursor, name: str) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{name}",))
    return bool(cur.fetchone()[0])
