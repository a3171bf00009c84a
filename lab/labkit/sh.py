"""Small wrappers around the commands the lab drives (docker, losetup, mmdebstrap)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence


class LabError(RuntimeError):
    """A lab operation failed; the message says what and how to fix it."""


def run(cmd: Sequence[str], *, check: bool = True, input: str | bytes | None = None,
        capture: bool = True, timeout: float | None = 600) -> subprocess.CompletedProcess:
    text = not isinstance(input, bytes)
    proc = subprocess.run(list(cmd), input=input, capture_output=capture, text=text, timeout=timeout)
    if check and proc.returncode != 0:
        err = (proc.stderr or "").strip() if capture else ""
        raise LabError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err}")
    return proc


def out(cmd: Sequence[str], **kw) -> str:
    return run(cmd, **kw).stdout.strip()


def docker(*args: str, **kw) -> subprocess.CompletedProcess:
    return run(["docker", *args], **kw)


def docker_json_lines(*args: str) -> list[dict]:
    text = out(["docker", *args, "--format", "{{json .}}"])
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)
