#!/usr/bin/env python3
"""Where a test run's seconds go, task by task: adds up the lines tests/callbacks/task_census.py wrote (one per task
result of every ansible-playbook run of `make test`, in build/test-logs/tasks.jsonl).

  python3 scripts/task_census.py [FILE] [--top N] [--stage NAME]

A task's seconds are its wall time in one run (from its start to its last host's result: hosts run side by side),
summed over the runs it is in; `results` counts host results (a module run each, unless skipped or done on the
controller). Tables: the tasks that took most seconds, the actions, the stages and the playbooks."""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

DEFAULT = Path(__file__).resolve().parent.parent / "build" / "test-logs" / "tasks.jsonl"
# Actions Ansible runs on the controller without a module run on the host (results name them fully qualified).
CONTROLLER = {"set_fact", "assert", "fail", "debug", "include_tasks", "include_role", "validate_argument_spec", "meta",
              "include_vars"}


def table(title: str, rows: list[tuple], head: tuple[str, ...]) -> None:
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    for row in [head, *rows]:
        print("  ".join(str(x).rjust(w) if isinstance(x, (int, float)) else str(x).ljust(w)
                        for x, w in zip(row, widths, strict=True)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--stage", default="", help="only the runs of this stage of `make test`")
    args = parser.parse_args()
    lines = [json.loads(x) for x in args.file.read_text().splitlines() if x.strip()]
    lines = [x for x in lines if not args.stage or x["stage"] == args.stage]
    occurrences: dict[tuple, list[dict]] = defaultdict(list)
    for x in lines:
        occurrences[(x["run"], x["uuid"])].append(x)
    tasks: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0, 0, 0])  # seconds, runs, results, module runs
    actions: dict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0])
    stages: dict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0])
    playbooks: dict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0])
    for results in occurrences.values():
        first = results[0]
        wall = max(r["seconds"] for r in results)
        modules = sum(1 for r in results
                      if r["status"] != "skipped" and r["action"].removeprefix("ansible.builtin.") not in CONTROLLER)
        key = (first["role"], first["task"][:90], first["action"].removeprefix("ansible.builtin."))
        for agg, k in ((tasks, key), (actions, first["action"]), (stages, first["stage"]),
                       (playbooks, first["playbook"])):
            agg[k][0] += wall
            agg[k][1] += len(results)
            agg[k][2] += modules
        tasks[key][3] += 1
    top = sorted(tasks.items(), key=lambda kv: -kv[1][0])[:args.top]
    table(f"Tasks by seconds (top {args.top})",
          [(round(v[0], 1), v[3], v[1], v[2], *k) for k, v in top],
          ("seconds", "runs", "results", "modules", "role", "task", "action"))
    for title, agg in (("Actions", actions), ("Stages", stages), ("Playbooks", playbooks)):
        rows = sorted(agg.items(), key=lambda kv: -kv[1][0])[:args.top]
        table(title, [(round(v[0], 1), v[1], v[2], k) for k, v in rows], ("seconds", "results", "modules", "name"))
    total = sum(v[0] for v in stages.values())
    print(f"\n{len(lines)} results, {sum(v[2] for v in stages.values())} module runs, {total:.0f} s of task wall time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
