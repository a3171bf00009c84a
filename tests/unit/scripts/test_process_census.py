"""Unit tests for scripts/process_census.py: records as the kernel writes them (struct acct_v3), added up by command
and by where the process ran."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "process_census.py"
spec = importlib.util.spec_from_file_location("process_census", SCRIPT)
census = importlib.util.module_from_spec(spec)
sys.modules["process_census"] = census  # dataclasses look their module up
spec.loader.exec_module(census)


def record(pid: int, ppid: int, comm: str, ticks: int, started: int = 1000) -> bytes:
    return census.RECORD.pack(0, 3, 0, 0, 0, 0, pid, ppid, started, 0.0, ticks, 0, 0, 0, 0, 0, 0, 0,
                              comm.encode())


def test_comp_t_times_are_decoded():
    assert census.comp_t(150) == 150
    assert census.comp_t((1 << 13) | 100) == 800  # mantissa 100, exponent 1: times 8


def test_cpu_is_added_up_by_command_and_by_where_it_ran():
    # Written as processes exit: children before their parents. A module run under a node's sshd; an ansible-playbook
    # worker under make; pid 30 reused by a later process that is not the worker's parent.
    data = b"".join([
        record(40, 30, "python3.11", 17),
        record(30, 20, "sshd", 1),
        record(20, 1, "sshd", 1),
        record(31, 30, "ansible-playboo", 9, started=1001),
        record(30, 10, "ansible-playboo", 50, started=1000),
        record(10, 1, "make", 1, started=999),
        record(30, 1, "sleep", 0, started=1005),
    ])
    processes = census.read(data)
    assert [p.comm for p in processes][:2] == ["python3.11", "sshd"]
    assert processes[0].cpu == 0.17
    text = census.report(processes, top=10)
    assert processes[0].chain == ["python3.11", "sshd", "sshd"]
    assert processes[3].chain == ["ansible-playboo", "ansible-playboo", "make"]
    rows = {tuple(line.split()[3:]): line.split()[:3] for line in text.splitlines()[8:]}
    assert rows[("lab", "containers", "python3.11")] == ["0.17", "1", "0.170"]
    assert rows[("controller", "ansible-playboo")] == ["0.59", "2", "0.295"]
    assert rows[("other", "sleep")] == ["0.00", "1", "0.000"]
