"""Ports and HTTP readiness on this machine: used by the lab and by the tests that start servers of their own."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from .sh import LabError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, seconds: float = 30, alive: Callable[[], bool] | None = None) -> None:
    """Return once ``url`` answers (any HTTP status); raise LabError after ``seconds``, or as soon as
    ``alive()`` says the server being waited for has exited."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if alive is not None and not alive():
                raise LabError(f"{url} did not answer: the server exited") from None
            if time.monotonic() > deadline:
                raise LabError(f"{url} did not answer within {seconds:.0f}s") from None
            time.sleep(0.2)
