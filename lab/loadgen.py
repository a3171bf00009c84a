#!/usr/bin/env python3
"""Continuous client load through the lab balancer, counting every failed request.

    python3 lab/loadgen.py --url http://127.0.0.1:PORT/version --out /tmp/load.json &
    ... deploy ...
    kill -TERM <pid>        # or: touch the --stop-file; or --duration SECONDS

From Python (the drills, the benchmarks): ``with in_background(url) as summary: ...``; the dict is filled with the
summary when the block ends.

A request fails when it gets no answer within --timeout, or any status other than 200 - unless --expect
STATUS:TEXT names it: an answer with that status whose body contains TEXT (maintenance mode's 503 page) is counted
among the bodies, as "HTTP STATUS TEXT", not as a failure. Each worker sends
requests one after another (new connection each time, like separate clients). On exit it writes a JSON
summary to --out (and prints it): total, failed, error_seconds (number of distinct wall-clock seconds
with at least one failure), first/last failure, failures by kind, and the bodies seen with their counts
and first/last time (with /version: which releases answered, and when).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


class Load:
    def __init__(self, url: str, workers: int, timeout: float, interval: float,
                 expect: tuple[int, str] | None = None):
        self.url, self.workers, self.timeout, self.interval = url, workers, timeout, interval
        self.expect = expect
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.total = 0
        self.failures: list[tuple[float, str]] = []
        self.bodies: dict[str, dict] = {}
        self.started = time.time()

    def one(self) -> None:
        now = time.time()
        expected = False
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as resp:
                body = resp.read(200).decode("utf-8", "replace").strip()
                status = resp.status
        except urllib.error.HTTPError as exc:
            status, body = exc.code, ""
            if self.expect and exc.code == self.expect[0]:
                with contextlib.suppress(Exception):
                    if self.expect[1] in exc.read(65536).decode("utf-8", "replace"):
                        expected, body = True, f"HTTP {exc.code} {self.expect[1]}"
        except Exception as exc:  # noqa: BLE001 - any failure to get an answer counts
            status, body = None, f"{type(exc).__name__}: {exc}"
        with self.lock:
            self.total += 1
            if status == 200 or expected:
                seen = self.bodies.setdefault(body, {"count": 0, "first": now, "last": now})
                seen["count"] += 1
                seen["last"] = now
            else:
                self.failures.append((now, f"HTTP {status}" if status is not None else body.split(":")[0]))

    def worker(self) -> None:
        while not self.stop.is_set():
            self.one()
            if self.interval:
                self.stop.wait(self.interval)

    def summary(self) -> dict:
        with self.lock:
            kinds = Counter(kind for _, kind in self.failures)
            seconds = {int(t) for t, _ in self.failures}
            return {
                "url": self.url,
                "started": self.started,
                "ended": time.time(),
                "total": self.total,
                "failed": len(self.failures),
                "error_seconds": len(seconds),
                "first_failure": self.failures[0][0] if self.failures else None,
                "last_failure": self.failures[-1][0] if self.failures else None,
                "failures_by_kind": dict(kinds),
                "bodies": self.bodies,
            }


@contextlib.contextmanager
def in_background(url: str, timeout: float = 5.0, warmup: float = 1.0) -> Iterator[dict]:
    """This client in a subprocess while the block runs (after ``warmup`` seconds of load); the yielded dict
    receives the summary when the block ends (it stays empty when the client wrote none)."""
    with tempfile.TemporaryDirectory(prefix="loadgen-") as tmp:
        stop, out = Path(tmp) / "stop", Path(tmp) / "summary.json"
        proc = subprocess.Popen([sys.executable, __file__, "--url", url, "--timeout", str(timeout),
                                 "--stop-file", str(stop), "--out", str(out)], stdout=subprocess.DEVNULL)
        summary: dict = {}
        try:
            time.sleep(warmup)
            yield summary
        finally:
            stop.touch()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if out.exists():
                summary.update(json.loads(out.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=5.0)
    # 4 clients, each pausing 0.1 s: about 40 requests a second, one every 25 ms. Faster clients find no gap
    # this one misses, but they take the CPU the deploy under test needs (on the 2-core CI machine, 150
    # requests a second through both haproxies and the app took most of a core).
    parser.add_argument("--interval", type=float, default=0.1, help="pause between one worker's requests")
    parser.add_argument("--duration", type=float, default=0, help="seconds to run (0: until stopped)")
    parser.add_argument("--stop-file", type=Path, help="stop when this file exists")
    parser.add_argument("--out", type=Path, help="write the JSON summary here")
    parser.add_argument("--expect", metavar="STATUS:TEXT",
                        help="an answer with this status and TEXT in its body is expected, not a failure")
    args = parser.parse_args(argv)
    expect = None
    if args.expect:
        status, _, text = args.expect.partition(":")
        if not status.isdigit() or not text:
            parser.error(f"--expect wants STATUS:TEXT, like 503:Down for maintenance, not {args.expect!r}")
        expect = (int(status), text)

    load = Load(args.url, args.workers, args.timeout, args.interval, expect)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: load.stop.set())
    threads = [threading.Thread(target=load.worker, daemon=True) for _ in range(args.workers)]
    for thread in threads:
        thread.start()
    deadline = time.time() + args.duration if args.duration else None
    while not load.stop.is_set():
        if deadline and time.time() >= deadline:
            break
        if args.stop_file and args.stop_file.exists():
            break
        load.stop.wait(0.2)
    load.stop.set()
    for thread in threads:
        thread.join(args.timeout + 1)
    summary = json.dumps(load.summary(), indent=2)
    if args.out:
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(summary + "\n")
        tmp.replace(args.out)
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
