"""Failure drills: the whole system in the lab, under client load, while things go wrong.

The ``system`` session fixture brings the lab up when it is down (and takes it down again at the end), then
runs site.yml with release 1: provisioned nodes, admins, PostgreSQL, the seed, the app on every rails node -
unless the system already runs as site.yml leaves it (as after `make test`'s rails scenario), where it would change
nothing. The drills run without a worker node (RAILSDEPLOY_LAB_WORKER_COUNT=0): one that runs is destroyed first.
Each drill reports one line of figures (printed at once); with ``--drills-doc PATH`` the figures and every
drill's outcome are written to PATH as a Markdown table (`make drills` writes docs/drills.md).
"""

from __future__ import annotations

import datetime
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from drillkit import REPO, System, labctl, playbook_ok
from lablib.lab import ensure_lab

DEMO_RELEASE = "1"
# The drills test no worker node (the rails scenario does): every playbook they run leaves it out of the lab's
# settings, and one that runs (make demo's, or the rails scenario's when it did not destroy it) is destroyed first.
os.environ["RAILSDEPLOY_LAB_WORKER_COUNT"] = "0"


@dataclass
class Outcome:
    number: int
    title: str
    figures: dict = field(default_factory=dict)
    result: str = "not run"
    message: str = ""
    details: tuple | None = None


OUTCOMES: dict[str, Outcome] = {}


def pytest_addoption(parser):
    parser.addoption("--drills-doc", default=None, help="write the drills' figures as Markdown to this file")


def pytest_configure(config):
    config.addinivalue_line("markers", "drill(number, title): a failure drill, reported in docs/drills.md")


def _as_site_leaves_it(system: System) -> str:
    """'' when the system runs as site.yml with release 1 leaves it - the configured rails nodes running, the PostgreSQL
    pair too (a leader and its streaming synchronous standby), every rails node serving release 1 and a healthy
    target, the seeded database answering, the deploy lock free - else what differs. (After `make test`'s rails
    scenario it does: site.yml would change nothing.)"""
    try:
        rails = system.rails()
        if len(rails) != 2:
            return f"rails nodes {sorted(rails)}"
        serving = {name: system.serving(node) for name, node in rails.items()}
        if set(serving.values()) != {DEMO_RELEASE}:
            return f"serving {serving}"
        if system.healthy_targets(system.target_group_arn()) != {n.instance_id for n in rails.values()}:
            return "not every rails node is a healthy target"
        system.sql("SELECT count(*) FROM notes")
        if not system.pair_healthy():
            return f"the PostgreSQL pair is not healthy: {system.cluster()}"
        if system.fingerprint()["deploy_lock"] != "free":
            return "the deploy lock is held"
    except Exception as exc:  # noqa: BLE001 - anything missing means: not deployed
        return f"{type(exc).__name__}: {exc}"
    return ""


@pytest.fixture(scope="session")
def system() -> Iterator[System]:
    lab = ensure_lab()
    try:
        the_system = System(lab)
        workers = the_system.nodes("worker")
        if workers:
            print(f"\ndestroy.yml runs: the drills leave the worker nodes out ({', '.join(workers)})")
            playbook_ok("destroy.yml", "-e", "nodes=" + ",".join(workers), what="destroy.yml (the worker nodes)")
        differs = _as_site_leaves_it(the_system)
        if differs:
            print(f"\nsite.yml runs: the system is not as it leaves it ({differs})")
            playbook_ok("site.yml", "-e", f"rails_app_release={DEMO_RELEASE}", what="site.yml (the whole system)")
        else:
            print("\nsite.yml is not run: the system already runs as it leaves it (release 1 everywhere)")
        the_system.wait_served(timeout=180)
        yield the_system
    finally:
        if lab.started_here:
            labctl("down", timeout=900)


class Reporter:
    """report(**figures): record the drill's figures and print them as one line; report.details(header, rows):
    a table of its own under the drills' table in the document."""

    def __init__(self, request, outcome: Outcome):
        self.request, self.outcome = request, outcome

    def __call__(self, **figures) -> None:
        self.outcome.figures.update(figures)
        line = " ".join(f"{k}={v}" for k, v in figures.items())
        plugins = self.request.config.pluginmanager
        terminal, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
        if terminal and capture:
            with capture.global_and_fixture_disabled():
                terminal.write_line(f"\ndrill {self.outcome.number} ({self.outcome.title}): {line}")

    def details(self, header: tuple[str, ...], rows: list[tuple]) -> None:
        self.outcome.details = (header, rows)


@pytest.fixture
def report(request, system: System) -> Reporter:
    marker = request.node.get_closest_marker("drill")
    outcome = OUTCOMES.setdefault(request.node.nodeid, Outcome(*marker.args))
    # Every drill starts from a serving system (the one before may have left it recovering).
    system.wait_served(timeout=180)
    return Reporter(request, outcome)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    marker = item.get_closest_marker("drill")
    outcome = OUTCOMES.setdefault(item.nodeid, Outcome(*marker.args)) if marker else None
    if outcome is not None and rep.failed:
        outcome.result = "FAILED"
        text = str(call.excinfo.value) if call.excinfo else rep.longreprtext
        outcome.message = " ".join(text.split())[:300]
    elif outcome is not None and rep.when == "call":
        outcome.result = "passed"
    return rep


def _commit() -> str:
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"


def _cell(text: str) -> str:
    """A table cell: one line, pipes escaped, paths of this checkout relative to it."""
    return str(text).replace(str(REPO) + "/", "").replace("|", "\\|").replace("\n", " ")


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--drills-doc")
    if not path or not OUTCOMES:
        return
    lines = [
        "# Failure drills",
        "",
        "Generated by `make drills` (tests/drills/, also part of `make test`): do not edit by hand.",
        f"Run on {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC at commit `{_commit()}`, in the local lab",
        "(moto, one container per instance, loop devices as EBS volumes, the haproxy balancer following the",
        "target group). Client load: lab/loadgen.py, 4 clients each sending a request every 0.1 s through the",
        "balancer (about 40 a second), 3 s timeout; a request fails on no answer or any status but 200. The drills",
        "of the PostgreSQL pair also write through the app: a note POSTed every 0.1 s (an acknowledged write is a",
        "201; write_outage_s: from the failure to the first acknowledged write after the last failed one). Times",
        "are seconds.",
        "",
        "| # | Drill | Result | Figures |",
        "|---|-------|--------|---------|",
    ]
    for o in sorted(OUTCOMES.values(), key=lambda o: o.number):
        figures = ", ".join(f"{k} {v}" for k, v in o.figures.items())
        if o.message:
            figures = f"{figures}; {o.message}" if figures else o.message
        lines.append(f"| {o.number} | {_cell(o.title)} | {o.result} | {_cell(figures)} |")
    for o in sorted(OUTCOMES.values(), key=lambda o: o.number):
        if o.details:
            header, rows = o.details
            lines += ["", f"## Drill {o.number}: {o.title}", "", "| " + " | ".join(header) + " |",
                      "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    lines.append("")
    Path(path).write_text("\n".join(lines))

