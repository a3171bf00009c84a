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


def running(pid: int) -> bool:
    """Whether process ``pid`` runs: it exists and is no zombie. A service whose parent (the `up` that started it) has
    exited is reaped by the init process, which in a container may never do it: its pid stays, its process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def alive(path: Path) -> int | None:
    """The pid in ``path`` if that process runs, else None."""
    try:
        pid = int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if running(pid) else None


def start(name: str, argv: list[str]) -> subprocess.Popen:
    """Start ``argv`` in the background, its output appended to ``<name>.log``, its pid in ``<name>.pid``."""
    log_file = open(config.STATE_DIR / f"{name}.log", "ab")  # the child keeps it open
    proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file(name).write_text(str(proc.pid))
    return proc


def stop(*names: str) -> None:
    """SIGTERM to each service's process group, all at once; wait up to 5 s for them to end; forget their pids."""
    pids = {name: alive(pid_file(name)) for name in names}
    for pid in filter(None, pids.values()):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(pid and running(pid) for pid in pids.values()):
        time.sleep(0.1)
    for name in names:
        pid_file(name).unlink(missing_ok=True)
