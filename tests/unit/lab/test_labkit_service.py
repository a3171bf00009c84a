"""Unit tests for lab/labkit/service.py: stopping the lab's background services.

`make lab-down` stops them before it removes the nodes; a service whose process has exited but was not reaped (its
parent, the `up` that started it, is gone, and a container's init may never reap it) must count as stopped at once,
not after the 5 s a live one gets.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from labkit import config, service


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "STATE_DIR", tmp_path)
    return tmp_path


def test_a_zombie_is_not_running_and_a_live_process_is(state_dir):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while service.running(dead.pid) and time.monotonic() < deadline:  # exited, not yet reaped: a zombie
            time.sleep(0.05)
        assert not service.running(dead.pid)
        assert service.running(live.pid)
        # What `up` and `status` ask: a service whose pid file names a zombie is not alive (so `up` starts it again).
        service.pid_file("dead").write_text(str(dead.pid))
        service.pid_file("live").write_text(str(live.pid))
        assert service.alive(service.pid_file("dead")) is None
        assert service.alive(service.pid_file("live")) == live.pid
    finally:
        live.kill()
        live.wait()
        dead.wait()


def test_stop_ends_every_named_service_at_once_and_forgets_them(state_dir):
    procs = {name: service.start(name, [sys.executable, "-c", "import time; time.sleep(60)"])
             for name in ("one", "two")}
    started = time.monotonic()
    service.stop("one", "two")
    took = time.monotonic() - started
    for name, proc in procs.items():
        assert proc.wait(timeout=5) != 0, f"{name} was not stopped"
        assert not service.pid_file(name).exists()
    # Each ended on SIGTERM: neither waited out the 5 s given to a service that does not end.
    assert took < 5, f"stopping two services took {took:.1f} s"
