# Test tooling, not part of the collection: scripts/test.py enables it for every ansible-playbook run of `make test`.
"""Appends one JSON line per task result to the file named by RAILSDEPLOY_TASK_CENSUS (nothing when it is unset):
the stage of `make test` (RAILSDEPLOY_TEST_STAGE), the playbook, the task, its role and action, the host, the result
(ok, changed, skipped, failed, unreachable) and the seconds from the task's start to this host's result.
`python3 scripts/task_census.py` adds them up: where the test run's seconds go, task by task."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_census
type: aggregate
short_description: One JSON line per task result (test tooling)
description:
  - Appends a line per task result to the file named by the environment variable E(RAILSDEPLOY_TASK_CENSUS).
requirements:
  - RAILSDEPLOY_TASK_CENSUS set to a writable path
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_census"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("RAILSDEPLOY_TASK_CENSUS", "")
        self._stage = os.environ.get("RAILSDEPLOY_TEST_STAGE", "")
        self._playbook = ""
        self._started: dict[str, float] = {}

    def v2_playbook_on_start(self, playbook):
        self._playbook = os.path.basename(playbook._file_name)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._started[task._uuid] = time.monotonic()

    def v2_playbook_on_handler_task_start(self, task):
        self._started[task._uuid] = time.monotonic()

    def _record(self, result, status: str) -> None:
        if not self._path:
            return
        task = result._task
        role = task._role.get_name() if task._role else ""
        line = {
            "stage": self._stage,
            "playbook": self._playbook,
            "role": role,
            "task": task.get_name(),
            "action": task.action,
            "host": result._host.get_name(),
            "status": "changed" if status == "ok" and result._result.get("changed") else status,
            "run": os.getpid(),
            "uuid": task._uuid,
            "seconds": round(time.monotonic() - self._started.get(task._uuid, time.monotonic()), 3),
        }
        # One write per line, appended: runs side by side (the lanes) share the file.
        with open(self._path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")
