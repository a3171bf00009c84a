"""A Docker registry of one test module's own: the lab's registry image in a container, published on a free
127.0.0.1 port (Docker pushes to 127.0.0.0/8 over plain HTTP without configuration), removed afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator

from labkit.net import free_port, wait_http

REGISTRY_IMAGE = "railsdeploy-lab/registry:latest"


class Registry:
    def __init__(self, port: int) -> None:
        self.address = f"127.0.0.1:{port}"

    def tags(self, name: str) -> list[str]:
        """The repository's tags (none when nothing was ever pushed to it)."""
        try:
            with urllib.request.urlopen(f"http://{self.address}/v2/{name}/tags/list", timeout=5) as resp:
                return sorted(json.load(resp).get("tags") or [])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # NAME_UNKNOWN: nothing was ever pushed to it
                return []
            raise

    def catalog(self) -> list[str]:
        with urllib.request.urlopen(f"http://{self.address}/v2/_catalog", timeout=5) as resp:
            return json.load(resp).get("repositories") or []


@contextlib.contextmanager
def own_registry(label: str) -> Iterator[Registry]:
    """A registry container named after ``label``; on the way out it goes, with every local image tagged for it."""
    port = free_port()
    name = f"rdbuild-itest-{label}-{os.getpid()}"
    docker = ["docker"]
    subprocess.run([*docker, "run", "--detach", "--rm", "--name", name, "--publish", f"127.0.0.1:{port}:5000",
                    REGISTRY_IMAGE], check=True, capture_output=True, text=True, timeout=120)
    registry = Registry(port)
    try:
        wait_http(f"http://{registry.address}/v2/")
        yield registry
    finally:
        subprocess.run([*docker, "rm", "--force", name], capture_output=True, timeout=120)
        refs = subprocess.run([*docker, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True,
                              text=True, timeout=120).stdout.split()
        for ref in refs:
            if ref.startswith(f"{registry.address}/"):
                subprocess.run([*docker, "image", "rm", ref], capture_output=True, timeout=120)
