"""The lab's background services (moto, the watcher, the metadata service, the TLS front): each a process in a
session of its own, with ``<name>.pid`` and ``<name>.log`` in the lab's state directory."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from . import config


def pid_file(name: str) -> Path:
    return config.STATE_DIR / f"{name}.pid"


def alive(path: Path) -> int | None:
    """The pid in ``path`` if that process runs, else None."""
    try:
        pid = int(path.read_text())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None


def start(name: str, argv: list[str]) -> subprocess.Popen:
    """Start ``argv`` in the background, its output appended to ``<name>.log``, its pid in ``<name>.pid``."""
    log_file = open(config.STATE_DIR / f"{name}.log", "ab")  # the child keeps it open
    proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file(name).write_text(str(proc.pid))
    return proc


def stop(name: str) -> None:
    """SIGTERM to the service's process group; wait up to 5 s for it to end; forget its pid."""
    path = pid_file(name)
    pid = alive(path)
    if pid:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
    path.unlink(missing_ok=True)
