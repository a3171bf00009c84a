"""Containers of a test's own (no lab): the docker CLI and a wait, for the image tests (tests/integration/images,
tests/integration/railsapp)."""

from __future__ import annotations

import subprocess
import time
import urllib.error

import pytest


def docker(*args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    """`docker <args>`; with ``check``, a non-zero exit fails the test with docker's own message."""
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} exited {proc.returncode}: {proc.stderr[-3000:]}")
    return proc


def wait(what: str, probe, timeout: float, diagnose=None) -> float:
    """Seconds until probe() is true; on timeout the test fails naming what, the last answer and diagnose()'s text."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout:
        try:
            last = probe()
            if last:
                return time.monotonic() - start
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last = exc
        time.sleep(0.5)
    detail = ""
    if diagnose:
        try:
            detail = f"\n{diagnose()}"
        except Exception as exc:  # noqa: BLE001 - the timeout is the failure; a diagnosis that fails only says so
            detail = f"\n(no diagnosis: {exc})"
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r}){detail}")
