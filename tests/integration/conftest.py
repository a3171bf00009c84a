"""Fixtures shared by the integration tests that run playbooks against a moto of their own (not the lab's)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from labkit.net import free_port, wait_http
from labkit.sh import LabError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """URL of a moto_server (the lab's launcher, with its fidelity fixes) for one test module, stopped after it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "lab" / "moto_server.py"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        try:
            wait_http(f"{url}/moto-api/", seconds=30, alive=lambda: proc.poll() is None)
        except LabError as exc:
            why = proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
            pytest.fail(f"moto_server did not answer at {url}: {exc} {why}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def collections_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """This checkout as ``railsdeploy.aws`` (a symlink), then the venv's collections (amazon.aws, ...)."""
    root = tmp_path_factory.mktemp("collections")
    link = root / "ansible_collections" / "railsdeploy" / "aws"
    link.parent.mkdir(parents=True)
    link.symlink_to(REPO, target_is_directory=True)
    return os.pathsep.join([str(root), sysconfig.get_paths()["purelib"]])


@pytest.fixture(scope="module")
def ansible_playbook(collections_path: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """run(inventory, playbook, *args, timeout=900): ansible-playbook of this venv with the repo's ansible.cfg,
    this checkout as the collection, and the JSON callback (stdout is one JSON document)."""
    bin_dir = Path(sys.executable).parent
    env = dict(
        os.environ,
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=collections_path,
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        # Nothing else may print into the JSON document (make test enables a timer): naming the stdout callback
        # itself enables no other callback (an empty value is an error).
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="0",
    )

    def run(inventory: Path, playbook: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        cmd = [str(bin_dir / "ansible-playbook"), "-i", str(inventory), str(playbook), *args]
        return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture(scope="module")
def ansible_locally(ansible_playbook) -> Callable[..., subprocess.CompletedProcess[str]]:
    """run(playbook, hosts, variables, directory, timeout=120): ``ansible_playbook`` with an inventory of ``hosts``
    (name => host vars) that it reaches on this machine (connection local, the venv's Python), ``variables`` for all
    of them - written to <directory>/hosts.yml: the roles' controller-side entry points, rendering for a test."""

    def run(playbook: Path, hosts: dict, variables: dict, directory: Path,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        inventory = directory / "hosts.yml"
        local = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
        inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts, "vars": {**local, **variables}}}))
        return ansible_playbook(inventory, playbook, timeout=timeout)

    return run
