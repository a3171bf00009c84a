"""ansible-playbook runs with the JSON callback (ansible.posix.json), read as a user of their output would."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest


class JsonRun:
    """One ansible-playbook run with the JSON callback on one host: its rc, stats and the result of each task."""

    def __init__(self, proc: subprocess.CompletedProcess[str], host: str = "localhost") -> None:
        self.proc = proc
        self.rc = proc.returncode
        try:
            self.output = json.loads(proc.stdout)
        except ValueError:
            pytest.fail(f"ansible-playbook printed no JSON (rc {self.rc}):\n{proc.stdout[-4000:]}\n{proc.stderr}")
        self.stats = self.output["stats"][host]
        self.tasks: list[tuple[str, dict[str, Any]]] = [
            (task["task"]["name"], task["hosts"][host])
            for play in self.output["plays"]
            for task in play["tasks"]
            if host in task["hosts"]
        ]

    def ok(self) -> JsonRun:
        assert self.rc == 0, f"ansible-playbook failed (rc {self.rc}):\n{self.proc.stdout[-6000:]}\n{self.proc.stderr}"
        return self

    @property
    def changed(self) -> int:
        return self.stats["changed"]

    def changed_tasks(self) -> list[str]:
        return [name for name, result in self.tasks if result.get("changed")]

    def result(self, name: str) -> dict[str, Any]:
        """The result of the (last) task named ``name``."""
        found = [result for task, result in self.tasks if task == name]
        assert found, f"no task named {name!r} ran; tasks: {[task for task, _ in self.tasks]}"
        return found[-1]

    def failure(self) -> str:
        (msg,) = [result.get("msg", "") for _name, result in self.tasks if result.get("failed")]
        return msg
