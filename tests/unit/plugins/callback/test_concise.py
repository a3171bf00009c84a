"""railsdeploy.aws.concise: what a person reads of a run (a real ansible-playbook on localhost), and the deploy
summary."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from ansible_collections.railsdeploy.aws.plugins.callback.concise import CallbackModule, swap_line

REPO = Path(__file__).resolve().parents[4]

PLAYBOOK = textwrap.dedent("""\
    - name: A play that changes nothing
      hosts: localhost
      gather_facts: false
      tasks:
        - name: A task whose result is ok
          ansible.builtin.set_fact:
            quiet_fact: 1

        - name: A task that is skipped
          ansible.builtin.debug:
            msg: never
          when: false

        - name: A task that only predicts a change
          ansible.builtin.copy:
            content: predicted
            dest: "{{ playbook_dir }}/predicted.txt"
            mode: "0644"
          check_mode: true

    - name: A play for hosts the run does not include
      hosts: localhost:&no_such_group
      gather_facts: false
      tasks:
        - name: A task for no host
          ansible.builtin.debug:
            msg: never

    - name: A play that changes something
      hosts: localhost
      gather_facts: false
      tasks:
        - name: A file is included
          ansible.builtin.include_tasks: included.yml

        - name: A task that reports a change
          ansible.builtin.command: "true"
          changed_when: true

        - name: A task that shows something
          ansible.builtin.debug:
            msg: what the person asked to see

        - name: A task that fails and is ignored
          ansible.builtin.command: "false"
          changed_when: false
          ignore_errors: true
    """)


def run(tmp_path: Path, *extra: str) -> str:
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "included.yml").write_text("- name: An included task\n  ansible.builtin.set_fact:\n    x: 1\n")
    (tmp_path / "hosts.ini").write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    # Not the caller's Ansible settings (scripts/test.py enables profile_tasks, whose recap names every task).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PROFILE_TASKS_"))}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="railsdeploy.aws.concise",
               ANSIBLE_COLLECTIONS_PATH=f"{REPO / 'build' / 'collections'}:{Path(sys.prefix) / 'lib'}")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "hosts.ini"),
                           *extra, str(tmp_path / "play.yml")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_a_run_prints_what_changed_and_failed_not_what_was_ok_skipped_or_included(tmp_path):
    out = run(tmp_path)
    assert "TASK [A task that reports a change]" in out and "changed: [localhost]" in out, out
    assert "TASK [A task that fails and is ignored]" in out and "...ignoring" in out, out
    assert "PLAY [A play that changes something]" in out, out
    assert "TASK [A task that shows something]" in out and "what the person asked to see" in out, out
    for quiet in ("A play that changes nothing", "A task whose result is ok", "A task that is skipped",
                  "A task that only predicts a change", "A play for hosts the run does not include",
                  "no hosts matched", "skipping:", "included:"):
        assert quiet not in out, f"{quiet!r} printed:\n{out}"
    assert out.count("ok: [localhost]") == 1, out  # the debug task's
    assert "PLAY RECAP" in out and "Total: " in out, out
    assert "DEPLOY SUMMARY" not in out, out  # no release was swapped


def test_with_v_everything_is_printed(tmp_path):
    out = run(tmp_path, "-v")
    for shown in ("PLAY [A play that changes nothing]", "TASK [A task whose result is ok]", "ok: [localhost]",
                  "skipping: [localhost]", "included: ", "skipping: no hosts matched"):
        assert shown in out, f"{shown!r} not printed:\n{out}"


def test_a_prediction_is_printed_in_a_check_run_and_with_v(tmp_path):
    for extra in ("--check", "-v"):
        out = run(tmp_path, extra)
        assert "TASK [A task that only predicts a change]" in out, f"{extra}:\n{out}"
    assert not (tmp_path / "predicted.txt").exists()


def fake_result(host, outcome, action="railsdeploy.aws.rails_release", check_mode=False, uuid="u1"):
    task = SimpleNamespace(action=action, check_mode=check_mode, _uuid=uuid, args={"release": "{{ x }}"})
    return SimpleNamespace(task=task, host=SimpleNamespace(get_name=lambda: host), result=outcome)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_the_summary_lists_each_swap_from_to_its_seconds_and_drain_or_its_failure():
    clock = Clock()
    callback = CallbackModule(clock=clock)
    for host, outcome, seconds, failed in [
        ("rails2001", {"changed": True, "previous_release": "1", "release": "2", "drain_seconds": 0.3}, 4.2, False),
        ("rails2002", {"failed": True, "release": "2", "msg": "release 2 failed its health check"}, 15.5, True),
        ("rails2001", {"changed": True, "previous_release": "2", "release": "1", "drain_seconds": 0.1}, 2.0, False),
    ]:
        callback._started[(host, "u1")] = clock.now
        clock.now += seconds
        callback._record_swap(fake_result(host, outcome), failed=failed)
    lines = [swap_line(host, swap) for host, swap in callback._swaps]
    assert lines == [
        "rails2001: release 1 -> 2 in 4.2 s, drained in 0.3 s",
        "rails2002: release 2 failed after 15.5 s: release 2 failed its health check",
        "rails2001: release 2 -> 1 in 2.0 s, drained in 0.1 s",
    ]


@pytest.mark.parametrize(("outcome", "action", "check_mode"), [
    ({"changed": False, "previous_release": "2", "release": "2"}, "railsdeploy.aws.rails_release", False),
    ({"changed": True, "previous_release": "1", "release": "2"}, "railsdeploy.aws.rails_release", True),
    ({"changed": True}, "ansible.builtin.command", False),
], ids=["unchanged-node", "plan-in-check-mode", "another-module"])
def test_what_is_not_a_swap_is_not_in_the_summary(outcome, action, check_mode):
    callback = CallbackModule(clock=Clock())
    callback._record_swap(fake_result("rails2001", outcome, action=action, check_mode=check_mode))
    assert callback._swaps == []


def test_a_first_deploy_names_no_previous_release():
    line = swap_line("rails2001", {"previous": None, "release": "1", "seconds": 3.0})
    assert line == "rails2001: release none -> 1 in 3.0 s"
