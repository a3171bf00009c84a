"""The background worker (bin/jobs), as the real Rails app's: the oldest waiting job is taken (FOR UPDATE SKIP
LOCKED: workers on several nodes never take the same one), worked on for its seconds, and marked finished with the
worker's name. SIGTERM lets the job in hand finish, then the worker exits 0. ``--schedule``: the scheduler, which
enqueues a job every SCHEDULE_SECONDS (60) and belongs on one node only."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Mapping

import psycopg2

from . import db
from .config import Config, ConfigError

CLAIM = (
    "UPDATE jobs SET started_at = now(), worker = %s WHERE id = (SELECT id FROM jobs WHERE started_at IS NULL "
    "ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id, seconds"
)


class Worker:
    def __init__(self, config: Config, schedule: bool, every: float) -> None:
        self.config = config
        self.schedule = schedule
        self.every = every
        self.me = f"{config.app_revision}/{socket.gethostname()}"
        self.stopping = False
        self.conn = None

    def stop(self, *_args) -> None:
        self.stopping = True

    def pause(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < until:
            time.sleep(0.1)

    def cursor(self):
        if self.conn is None or self.conn.closed:
            self.conn = db.connect(self.config.db_params)
        return self.conn.cursor()

    def once(self) -> None:
        with self.cursor() as cur:
            if self.schedule:
                cur.execute("INSERT INTO jobs (seconds) VALUES (0) RETURNING id")
                print(f"scheduled job {cur.fetchone()[0]}", flush=True)
                self.pause(self.every)
                return
            cur.execute(CLAIM, (self.me,))
            job = cur.fetchone()
        if job is None:
            self.pause(0.5)
            return
        job_id, seconds = job
        print(f"job {job_id} started ({seconds} s)", flush=True)
        done_at = time.monotonic() + seconds  # a job in hand is finished, SIGTERM or not
        while time.monotonic() < done_at:
            time.sleep(min(0.5, done_at - time.monotonic()))
        self.finish(job_id)
        print(f"job {job_id} finished" + (" (asked to stop while working on it)" if self.stopping else ""), flush=True)

    def finish(self, job_id: int, attempts: int = 30) -> None:
        """Record the job finished, even when the connection broke while it ran (the node's database proxy was
        replaced, a failover): reconnect and try again for a while, stopping or not."""
        for attempt in range(1, attempts + 1):
            try:
                with self.cursor() as cur:
                    cur.execute("UPDATE jobs SET finished_at = now() WHERE id = %s", (job_id,))
                return
            except psycopg2.Error as exc:
                if attempt == attempts:
                    raise
                print(f"job {job_id}: database unavailable ({type(exc).__name__}); retrying", flush=True)
                if self.conn is not None:
                    self.conn.close()
                time.sleep(1)

    def run(self) -> int:
        kind = "scheduler" if self.schedule else "worker"
        print(f"{kind} {self.me} started", flush=True)
        while not self.stopping:
            try:
                self.once()
            except psycopg2.Error as exc:
                print(f"database unavailable ({type(exc).__name__}); retrying", flush=True)
                if self.conn is not None:
                    self.conn.close()
                self.pause(1)
        print(f"{kind} {self.me} stopped", flush=True)
        return 0


def main(argv: list[str], environ: Mapping[str, str] = os.environ) -> int:
    try:
        config = Config.from_env(environ, require_secret=False)
    except ConfigError as exc:
        print(f"bin/jobs: {exc}", file=sys.stderr)
        return 1
    worker = Worker(config, "--schedule" in argv, float(environ.get("SCHEDULE_SECONDS", "60")))
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    return worker.run()
