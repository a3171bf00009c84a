#!/usr/bin/env python3
"""`make test`: every test stage, on one lab, with a table of the stages and their seconds at the end.

  scripts/test.py                  every stage (what CI runs)
  scripts/test.py --list           the stages, with their lanes and what each waits for
  scripts/test.py unit drills      only these stages, by name, first or last word (`molecule`, `integration`,
                                   `rails`), with what they need (venv, images, lab)

Needs only the standard library: it starts before the venv exists, which it installs beside the image build.

One lab serves every stage that needs one: it is brought up once (when the venv and the images are ready) and
taken down once at the end, also when a stage fails or the run is interrupted. A lab that was already up is used
and left up.

Stages run in lanes, one after another within a lane, the lanes side by side. The `main` lane streams its output;
each stage of another lane prints its output as one block when it ends:
  offline  the venv, the integration tests of build.yml and build_images.yml (their own moto and registry), then
           the images' Patroni tests (containers of their own, mostly waiting for Patroni: at the lowest CPU weight
           they waited past their timeouts, CI#79);
  users    the lab balancer's test (an ALB of its own) and the lab's node tests, on instances of their own (itest-*,
           their node containers at the lowest CPU weight);
  idle     lint, the integration tests against a moto of their own and of bad settings (no AWS at all), the unit
           tests (CPU work on this machine only) beside the rails scenario, then - once it has ended, beside the
           drills - the users scenario (instances of its own, Environment=users: its work is mostly Ansible's, on
           this machine) and the real Rails app's image test, on the CPU the main lane leaves idle: the rails
           scenario and the drills leave a quarter of both cores idle while they wait (deploys, failovers,
           restores); the first scenarios and the node tests keep both cores busy, and CPU work beside them
           lengthens the main lane.
Every stage beside the main lane but the venv runs at the lowest CPU priority (nice 19), and all it starts.
Stages marked `alone` (the rails scenario and the drills, which count failed requests under load) start only when
every lane but `idle` has finished. After a failure no new stage starts, unless --keep-going (then only what needs
the failed stage is skipped).

Molecule scenarios converge on what the one before left (provision, then postgres, then pair, then rails); each
still runs alone from a stopped lab (`molecule test -s rails`). Ansible runs report their slowest tasks
(ansible.posix.profile_tasks), pytest its slowest tests (--durations).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOGS = REPO / "build" / "test-logs"
VENV_BIN = REPO / ".venv" / "bin"
LABCTL = [str(VENV_BIN / "python"), str(REPO / "lab" / "labctl.py")]
MAKE = ["make", "--no-print-directory"]
LAB = "lab up"


@dataclass
class Stage:
    name: str
    argv: list[str]
    lane: str = "main"
    after: tuple[str, ...] = ()  # stages that must have passed first (chosen with it)
    # Stages that end first when this run has them: an order on the CPU, not a need (their result does not matter,
    # and choosing this stage does not choose them).
    not_before: tuple[str, ...] = ()
    lab: bool = True  # needs the lab up (and so waits for it)
    alone: bool = False  # starts when every lane but `idle` has finished
    seconds: float | None = None
    cpu: float | None = None  # the machine's busy CPU seconds while it ran (every lane's, and the nodes')
    own_cpu: float | None = None  # CPU seconds of its command and what that started (not the nodes')
    result: str = "not run"

    @property
    def niced(self) -> bool:
        """Every stage beside the main lane runs at nice 19, but the venv: the lab's start waits for it."""
        return self.lane != "main" and self.name not in NOT_NICED

    def named(self, names: list[str]) -> bool:
        """Named by its whole name, its first word (`molecule`, `integration`) or its last (`rails`)."""
        words = self.name.split()
        return any(n in (self.name, words[0], words[-1]) for n in names)


def molecule(scenario: str, **kw) -> Stage:
    return Stage(f"molecule {scenario}", ["molecule", "test", "-s", scenario], **kw)


# The lane beside the stages under load (see the docstring).
IDLE = "idle"
# The stages beside the main lane that run at the usual priority: the lab's start waits for the venv. (Until CI#75 the
# offline and users lanes all did: the build, images and node tests' own CPU, some 170 CPU-s, competed with the
# provision and postgres scenarios at full weight.)
NOT_NICED = ("venv",)
# Integration tests that need no lab: playbooks against a moto of their own; build.yml with its own registry.
OWN_MOTO = ["tests/integration/cdn", "tests/integration/backups", "tests/integration/data_volume",
            "tests/integration/isolation", "tests/integration/security_groups"]
OWN_REGISTRY = ["tests/integration/rails_image", "tests/integration/cluster_images"]
# What the idle lane's CPU-only stages (lint, the own-moto, settings and unit tests) wait for: the end of the pair
# scenario, so that they run beside the rails scenario, whose deploys leave a quarter of both cores idle (CI#64-66:
# 73-77% busy), not beside the postgres and pair scenarios, which they kept 90-94% busy (CI#61 without them: 341 s and
# 164 s; CI#66 with them: 383 and 196).
BESIDE_RAILS = ("molecule pair",)
STAGES = [
    Stage("venv", MAKE + ["venv"], lane="offline", lab=False),
    Stage("lint", MAKE + ["lint"], lane=IDLE, lab=False, after=("venv",), not_before=BESIDE_RAILS),
    Stage("integration own-moto", ["pytest", *OWN_MOTO, "-v", "--durations=5"], lane=IDLE, lab=False,
          after=("venv",), not_before=BESIDE_RAILS),
    Stage("integration build", ["pytest", *OWN_REGISTRY, "-v", "--durations=5"], lane="offline", lab=False,
          after=("venv", "images")),
    # The PostgreSQL image's Patroni and the etcd image, on networks of their own (no lab): a Patroni pair, its
    # failover, an adoption, a node proxy - mostly waiting for Patroni (a sixth of a core): off the main lane
    # (CI#42: 68 s there).
    Stage("integration images", ["pytest", "tests/integration/images", "-v", "--durations=5"], lane="offline",
          lab=False, after=("venv", "images")),
    # Bad settings refused before any AWS call (an ansible-playbook run per case, no moto, all CPU), and the unit
    # tests (CPU only): in the idle lane after lint and the own-moto tests.
    Stage("integration settings", ["pytest", "tests/integration/settings", "-v", "--durations=5"], lane=IDLE,
          lab=False, after=("venv",), not_before=BESIDE_RAILS),
    Stage("unit", MAKE + ["unit"], lane=IDLE, lab=False, after=("venv",), not_before=BESIDE_RAILS),
    # Admins and the Docker engine on instances of its own, Environment=users: users.yml's runs are Ansible's CPU on
    # this machine (niced here), its nodes' work is not niced. Beside the drills, which leave almost a third of both
    # cores idle while they wait for failovers and restores (CI#63: 71% busy); beside the rails scenario, whose deploys
    # keep both cores busy (94%), it lengthened it; until CI#55 a third lane beside the first scenarios, where it kept
    # both cores busy with them.
    molecule("users", lane=IDLE, not_before=("molecule rails",)),
    # The real Rails app's image (what `make demo` deploys) against the PostgreSQL image, no lab: Ruby's boots are
    # CPU work, so beside the drills, not the first scenarios.
    Stage("integration railsapp", ["pytest", "tests/integration/railsapp", "-v", "--durations=5"], lane=IDLE,
          lab=False, after=("venv", "images")),
    Stage("images", MAKE + ["images"], lab=False),
    # First in the users lane, beside the provision scenario: the lab's single balancer follows the lab VPC's ALB
    # whose name sorts first, and this test's (itest-alb-*) sorts before the environment's (railsdeploy-lab), which
    # no stage sends requests through before the rails scenario (CI#46: 42 s on the main lane).
    Stage("integration balancer", ["pytest", "tests/integration/lab/test_balancer.py", "-v", "--durations=5"],
          lane="users"),
    # Instances and volumes of its own (itest-*): beside the scenarios. An etcd cluster on three of them; a PostgreSQL
    # leader and its replica on two more. (CI#50 ran it first in the idle lane instead: the postgres and pair scenarios
    # took 61 s less, the rails scenario and the drills 99 s more - the drills' outages wait on CPU it took.)
    Stage("integration nodes", ["pytest", "tests/integration/lab/test_materialise.py",
                                "tests/integration/lab/test_etcd.py", "tests/integration/lab/test_replica.py", "-v",
                                "--durations=5"], lane="users"),
    molecule("provision"),
    molecule("postgres"),
    # The single node the postgres scenario leaves becomes the pair (the lab's setting): the rails scenario and the
    # drills run on it.
    molecule("pair"),
    molecule("rails", alone=True),
    Stage("drills", ["pytest", "tests/drills", "-v", "--durations=0", "--drills-doc", "docs/drills.md"], alone=True),
]
NEEDED_FIRST = ("venv", "images")  # chosen whenever a chosen stage needs the lab

# The slowest tasks of every ansible-playbook run (molecule's and the tests'), without a line per task.
# Every task result, one JSON line each, in build/test-logs/tasks.jsonl (tests/callbacks/task_census.py):
# `python3 scripts/task_census.py` shows where the run's seconds went, task by task.
ANSIBLE_TIMING = {
    "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks,task_census",
    "ANSIBLE_CALLBACK_PLUGINS": str(REPO / "tests" / "callbacks"),
    "PROFILE_TASKS_SUMMARY_ONLY": "true",
    "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "5",
    "RAILSDEPLOY_TASK_CENSUS": str(LOGS / "tasks.jsonl"),
}
PRINT = threading.Lock()


def say(text: str) -> None:
    with PRINT:
        print(f"\n==> {text}", flush=True)


class Run:
    def __init__(self, stages: list[Stage], keep_going: bool = False):
        self.stages = stages
        self.keep_going = keep_going
        self.lab_up = Stage(LAB, LABCTL + ["up"], lab=False, after=NEEDED_FIRST)
        self.lab_down = Stage("lab down", LABCTL + ["down"], lab=False)
        self.done = {s.name: threading.Event() for s in [*stages, self.lab_up]}
        self.passed: dict[str, bool] = {}
        self.failed = threading.Event()
        self.lab_lock = threading.Lock()
        self.running: set[subprocess.Popen] = set()  # every lane's stage commands, stopped when the run is interrupted
        self.interrupted = threading.Event()  # no stage starts after it
        self.started_lab = False

    # ---- one stage -----------------------------------------------------------------------------------------

    def _ready(self, stage: Stage) -> bool:
        """Wait for what the stage needs; False when any of it failed (or a stage elsewhere did)."""
        for name in stage.after:
            if name in self.done:
                self.done[name].wait()
                if not self.passed.get(name):
                    return False
        for name in stage.not_before:
            if name in self.done:
                self.done[name].wait()
        if self.interrupted.is_set() or (stage.lab and not self.ensure_lab()):
            return False
        return not self.interrupted.is_set() and (self.keep_going or not self.failed.is_set())

    def run(self, stage: Stage, streamed: bool) -> None:
        try:
            if self._ready(stage):
                ok = self._execute(stage, streamed)
                self.passed[stage.name] = ok
                if not ok:
                    self.failed.set()
        finally:
            self.done[stage.name].set()

    def _execute(self, stage: Stage, streamed: bool) -> bool:
        """Run the stage's command; its output streams, or is printed as one block when it ends."""
        # The venv's tools first: a Python version manager's shim (pyenv) may have put its own bin directory, with
        # other versions of pytest and ansible, before the PATH that make set.
        env = dict(os.environ, **ANSIBLE_TIMING, RAILSDEPLOY_TEST_STAGE=stage.name,
                   PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        log = LOGS / f"{stage.name.replace(' ', '-')}.log"
        started, cpu_started = time.monotonic(), busy_cpu_seconds()
        try:
            # Beside the main lane, at the lowest CPU priority, and all they start.
            argv = ["nice", "-n", "19", *stage.argv] if stage.niced else stage.argv
            if streamed:
                say(stage.name)
                rc = self._wait(stage, self._start(argv, env))
            else:
                with log.open("w") as out:
                    rc = self._wait(stage, self._start(argv, env, stdout=out, stderr=subprocess.STDOUT))
        finally:
            stage.seconds = time.monotonic() - started
            if cpu_started is not None:
                stage.cpu = busy_cpu_seconds() - cpu_started
        stage.result = "passed" if rc == 0 else f"FAILED (rc {rc})"
        if not streamed:
            with PRINT:
                print(f"\n==> {stage.name} ({stage.lane} lane): {stage.result} in {stage.seconds:.0f} s; "
                      "its output:", flush=True)
                sys.stdout.write(log.read_text())
                sys.stdout.flush()
        return rc == 0

    def _start(self, argv: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
        """In a session of its own: an interrupt stops it with everything it started (_stop_running)."""
        proc = subprocess.Popen(argv, cwd=REPO, env=env, start_new_session=True, **kw)
        self.running.add(proc)
        return proc

    def _stop_running(self) -> None:
        """Every stage command still running, with what it started: SIGTERM, then SIGKILL after 30 s. Each is reaped by
        its lane's thread (never here: two waits on one process would race)."""
        for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 0)):
            for proc in list(self.running):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
            deadline = time.monotonic() + grace
            while self.running and time.monotonic() < deadline:
                time.sleep(0.5)

    def _wait(self, stage: Stage, proc: subprocess.Popen) -> int:
        """The command's exit status; its own CPU seconds (with every process it started and reaped: playbooks,
        their workers and local modules, moto of its own - not what runs in the node containers) in stage.own_cpu."""
        _, status, usage = os.wait4(proc.pid, 0)
        self.running.discard(proc)
        proc.returncode = os.waitstatus_to_exitcode(status)
        stage.own_cpu = usage.ru_utime + usage.ru_stime
        return proc.returncode

    def ensure_lab(self) -> bool:
        """The lab is up: brought up once, by whichever lane needs it first; the others wait for that."""
        with self.lab_lock:
            if not self.done[LAB].is_set():
                if not self._ready(self.lab_up):
                    self.passed[LAB] = False
                elif subprocess.run(LABCTL + ["is-up"], cwd=REPO, capture_output=True).returncode == 0:
                    self.lab_up.result = "already up: used and left up"
                    self.passed[LAB] = True
                else:
                    self.started_lab = True  # taken down at the end even when it came up only in part
                    self.passed[LAB] = self._execute(self.lab_up, streamed=True)
                    if not self.passed[LAB]:
                        self.failed.set()
                self.done[LAB].set()
        return self.passed[LAB]

    # ---- the lanes -----------------------------------------------------------------------------------------

    def lane(self, stages: list[Stage], streamed: bool) -> None:
        for stage in stages:
            self.run(stage, streamed)

    def wait_idle(self, idle: threading.Thread, stages: list[Stage], why: str) -> None:
        if idle.is_alive():
            say(f"waiting for the idle lane {why} (" + ", ".join(
                s.name for s in stages if not self.done[s.name].is_set()) + ")")
        idle.join()

    def main(self) -> bool:
        """Every lane runs in a thread of its own, the main lane too: this thread only waits. Interrupted (Ctrl-C, CI's
        SIGTERM), it stops every running stage (_stop_running); no other starts."""
        result: list[bool] = []
        lanes = threading.Thread(target=lambda: result.append(self._lanes()), daemon=True)
        lanes.start()
        try:
            while lanes.is_alive():
                lanes.join(0.5)
        except KeyboardInterrupt:
            say("interrupted")
            self.interrupted.set()
            self._stop_running()
            lanes.join(60)
            return False
        return bool(result and result[0])

    def _lanes(self) -> bool:
        LOGS.mkdir(parents=True, exist_ok=True)
        (LOGS / "tasks.jsonl").unlink(missing_ok=True)
        lanes: dict[str, list[Stage]] = {"main": []}
        for s in self.stages:
            if not s.alone:
                lanes.setdefault(s.lane, []).append(s)
        threads = [threading.Thread(target=self.lane, args=(stages, False), daemon=True)
                   for name, stages in lanes.items() if name not in ("main", IDLE)]
        for t in threads:
            t.start()

        def idle_lane() -> None:
            """Once the other lanes beside the main one have ended (the nodes test, during the postgres scenario)."""
            for t in threads:
                t.join()
            self.lane(lanes.get(IDLE, []), False)

        idle = threading.Thread(target=idle_lane, daemon=True)
        idle.start()
        self.lane(lanes["main"], streamed=True)
        for t in threads:
            if t.is_alive():
                say("waiting for the lanes beside the main one, before the stages under load")
            t.join()
        for stage in (s for s in self.stages if s.alone):
            self.run(stage, streamed=True)
        self.wait_idle(idle, lanes.get(IDLE, []), "to finish")
        return not self.failed.is_set() and all(s.result == "passed" for s in self.stages)


def busy_cpu_seconds() -> float | None:
    """CPU seconds this machine has spent on anything but idling and waiting for I/O since boot (Linux)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def machine_speed() -> float:
    """Seconds one core takes for a fixed loop. The same commands have run 20-40% slower on this kind of machine
    from one hour to the next (a shared host): runs are comparable only with this figure beside them."""
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - started


def table(stages: list[Stage], wall: float) -> str:
    """One row per stage. `cpu %`: how busy the machine's cores were while the stage ran (all lanes together): a
    main-lane stage well below 100 waits (deploys, outages), one near 100 is slowed by what runs beside it.
    `own cpu s`: the CPU seconds of the stage's own processes (playbooks, modules run on this machine, pytest),
    without the node containers' - what a cut in that stage's work would give back to the run."""
    cores = os.cpu_count() or 1
    rows = [(s.name, f"{s.seconds:.0f}" if s.seconds is not None else "-",
             f"{100 * s.cpu / (cores * s.seconds):.0f}" if s.cpu is not None and s.seconds else "-",
             f"{s.own_cpu:.0f}" if s.own_cpu is not None else "-", s.result,
             "" if s.lane == "main" or s.seconds is None
             else f"beside the main lane ({s.lane}{', nice 19' if s.niced else ''})") for s in stages]
    own = sum(s.own_cpu or 0 for s in stages)
    rows.append(("total (wall clock)", f"{wall:.0f}", "", f"{own:.0f}", "", ""))
    header = ("stage", "seconds", "cpu %", "own cpu s", "result", "note")
    w = [max(len(r[i]) for r in [*rows, header]) for i in range(5)]

    def line(name: str, seconds: str, cpu: str, own_cpu: str, result: str, note: str) -> str:
        return (f"{name:<{w[0]}}  {seconds:>{w[1]}}  {cpu:>{w[2]}}  {own_cpu:>{w[3]}}  {result:<{w[4]}}  "
                f"{note}").rstrip()

    return "\n".join([line(*header), line(*("-" * n for n in w), ""), *(line(*r) for r in rows)])


AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")


@contextlib.contextmanager
def nice_honoured() -> Iterator[None]:
    """nice 19 means the lowest priority for the whole run, also across sessions: the kernel's autogroups are off.

    With autogroups on (the default of many kernels), each session is scheduled as one group with an equal share, and
    a nice value counts only inside its own group. Ansible starts a session per task (its workers call setsid), so a
    niced lane's playbooks took as much CPU as the main lane's (docs/design/test-time.md). Set back as it was when the
    run ends; without the right to change it (not root) the run goes on."""
    if not AUTOGROUP.exists():  # a kernel without autogroups: nice already counts everywhere
        yield
        return
    try:
        before = AUTOGROUP.read_text().strip()
        AUTOGROUP.write_text("0")
    except OSError as e:
        print(f"note: autogroups stay on ({e.strerror}): nice 19 lanes compete with the main lane", flush=True)
        yield
        return
    print("autogroups off for this run (nice 19 lanes yield to the main lane); set back at the end", flush=True)
    try:
        yield
    finally:
        AUTOGROUP.write_text(before)


def uncovered() -> list[str]:
    """Test files under tests/ that no stage runs (a new integration test directory needs a stage)."""
    paths = [REPO / a for s in STAGES for a in s.argv if a.startswith("tests/")]
    paths += [REPO / "tests" / "unit", REPO / "tests" / "sanity", REPO / "tests" / "build"]  # make unit, make lint
    return sorted(str(f.relative_to(REPO)) for f in (REPO / "tests").rglob("test_*.py")
                  if not any(f == p or p in f.parents for p in paths))


def choose(names: list[str]) -> list[Stage]:
    """The stages named (all when none are), with the venv and the images when any of them needs the lab."""
    if not names:
        return list(STAGES)
    chosen = {s.name for s in STAGES if s.named(names)}
    needs = set().union(*(set(s.after) for s in STAGES if s.name in chosen))
    if any(s.lab for s in STAGES if s.name in chosen):
        needs |= set(NEEDED_FIRST)
    while needs - chosen:  # what they wait for, and what that waits for
        chosen |= needs
        needs = set().union(*(set(s.after) for s in STAGES if s.name in chosen))
    return [s for s in STAGES if s.name in chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", nargs="*", help="only these stages, by name or last word (default: all)")
    parser.add_argument("--list", action="store_true", help="list the stages and exit")
    parser.add_argument("--keep-going", action="store_true", help="after a failure, run every stage that can run")
    args = parser.parse_args(argv)
    if args.list:
        for s in STAGES:
            needs = [*s.after, *([LAB] if s.lab else [])]
            print(f"{s.name:<22} lane {s.lane:<8} {'nice 19 ' if s.niced else ''}{'alone ' if s.alone else ''}"
                  f"{'after ' + ', '.join(needs) if needs else ''}"
                  f"{'; not before ' + ', '.join(s.not_before) + ' ends' if s.not_before else ''}")
        return 0
    unknown = [n for n in args.stages if not any(s.named([n]) for s in STAGES)]
    if unknown:
        parser.error(f"unknown stage(s) {', '.join(sorted(unknown))}; --list shows them")
    missed = uncovered()
    if missed:
        parser.error(f"no stage runs {', '.join(missed)}: add it to STAGES in {Path(__file__).name}")
    chosen = choose(args.stages)
    # SIGTERM (CI's timeout) ends the run like Ctrl-C: the lab still comes down.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    speed_before = machine_speed()
    started, cpu_started = time.monotonic(), busy_cpu_seconds()
    run = Run(chosen, keep_going=args.keep_going)
    ok = False
    with nice_honoured():
        try:
            ok = run.main()
        finally:
            if run.started_lab:
                ok = run._execute(run.lab_down, streamed=True) and ok
    extra = [s for s in (run.lab_up, run.lab_down) if s.result != "not run"]
    say("stages and their seconds")
    wall = time.monotonic() - started
    print(table(chosen + extra, wall))
    if cpu_started is not None:
        # The stages share the CPU: its total is what the run costs (fewer than cores x wall seconds: waiting).
        cpu = busy_cpu_seconds() - cpu_started
        print(f"machine CPU busy: {cpu:.0f} s of {(os.cpu_count() or 1) * wall:.0f} s "
              f"({os.cpu_count()} cores x {wall:.0f} s)")
    print(f"machine speed: a 10M-step Python loop took {speed_before:.2f} s before the run, {machine_speed():.2f} s "
          "after (lower is faster; compare runs only at similar speeds)")
    print(f"\nscripts/test.py: {'passed' if ok else 'FAILED'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
