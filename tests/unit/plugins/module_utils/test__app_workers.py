"""WorkerSet (app_workers) against a docker CLI simulated in memory: which workers start, stop and stay, in which
order, and that a worker that does not stay up fails the module naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.railsdeploy.aws.plugins.module_utils._app_container import SECRETS_TARGET, Docker
from ansible_collections.railsdeploy.aws.plugins.module_utils._app_workers import (
    LABEL_RELEASE,
    LABEL_WORKER_OF,
    WorkerSet,
    WorkersFailed,
    worker_errors,
)

IMAGE = "registry.example/shop"


class FakeDocker:
    """The docker commands WorkerSet sends, answered from a dict of containers; every change is recorded."""

    def __init__(self):
        self.images = {f"{IMAGE}:{r}": {"Id": f"sha256:{r * 8}", "Config": {"Cmd": ["puma"]}} for r in "123"}
        self.containers: dict[str, dict] = {}
        self.calls: list[tuple] = []
        self.exits_at_once: set[str] = set()  # commands (first word) that exit as soon as they start
        self.ignores_sigterm: set[str] = set()

    def __call__(self, argv):
        args = argv[1:]
        if args[0] == "ps":
            label = args[args.index("--filter") + 1].removeprefix("label=")
            key, value = label.split("=", 1)
            ids = [c["Id"] for c in self.containers.values() if c["Config"]["Labels"].get(key) == value]
            return 0, "\n".join(ids), ""
        if args[:2] == ["container", "inspect"]:
            found = [c for c in self.containers.values() if c["Id"] in args[2:] or c["Name"][1:] in args[2:]]
            return (0, json.dumps(found), "") if found else (1, "[]", "No such container")
        if args[:2] == ["image", "inspect"]:
            image = self.images.get(args[2])
            return (0, json.dumps([image]), "") if image else (1, "[]", "No such image")
        self.calls.append(tuple(args))
        if args[0] == "stop":
            for name in args[3:]:
                state = self.containers[name]["State"]
                killed = self.containers[name]["Config"]["Cmd"][-1] in self.ignores_sigterm
                state.update(Status="exited", Running=False, ExitCode=137 if killed else 0)
            return 0, "", ""
        if args[0] == "rm":
            self.containers.pop(args[-1], None)
            return 0, "", ""
        if args[0] == "logs":
            return 0, "boom: command not found\n", ""
        if args[0] == "run":
            name = args[args.index("--name") + 1]
            labels = dict(a.split("=", 1) for i, a in enumerate(args) if i and args[i - 1] == "--label")
            image_ref = args[args.index("--entrypoint") + 2]
            cmd = args[args.index("--entrypoint") + 6:]
            dead = cmd[0] in self.exits_at_once
            self.containers[name] = {
                "Id": f"id-{name}-{len(self.calls)}", "Name": "/" + name, "Image": self.images[image_ref]["Id"],
                "Config": {"Labels": labels, "Cmd": cmd,
                           "StopTimeout": int(args[args.index("--stop-timeout") + 1])},
                "State": {"Status": "exited" if dead else "running", "Running": not dead,
                          "ExitCode": 127 if dead else 0, "RestartCount": 0},
                "Mounts": [{"Destination": SECRETS_TARGET,
                            "Source": args[args.index("--mount") + 1].split(",")[1].removeprefix("source=")}],
            }
            return 0, "", ""
        raise AssertionError(f"unexpected docker call {args}")


@pytest.fixture
def docker() -> FakeDocker:
    return FakeDocker()


def params(tmp_path: Path, **override) -> dict:
    p = dict(name="shop", image=IMAGE, release="1", workers=[{"name": "jobs", "command": ["bin/jobs"]}],
             absent=[], prune=True, env={"RAILS_ENV": "production"}, secret_env={"DATABASE_URL": "postgres://x:pw@db/x"},
             run_options=[], stop_timeout=30, start_check_seconds=0.0, state_dir=str(tmp_path / "state"))
    p.update(override)
    return p


def apply(docker: FakeDocker, tmp_path: Path, check_mode=False, **override) -> dict:
    clock = iter(range(1000))
    return WorkerSet(params(tmp_path, **override), Docker(docker), clock=lambda: next(clock),
                     sleep=lambda s: None).run(check_mode=check_mode)


def test_first_run_starts_each_worker_with_restart_policy_and_secrets_out_of_inspect(docker, tmp_path):
    result = apply(docker, tmp_path, workers=[{"name": "jobs", "command": ["bin/jobs"], "stop_timeout": 300},
                                              {"name": "mail", "command": ["bin/mail"]}])

    assert result["changed"] is True
    assert result["started"] == ["shop-worker-jobs", "shop-worker-mail"]
    assert result["workers"] == {"shop-worker-jobs": "1", "shop-worker-mail": "1"}
    run = [c for c in docker.calls if c[0] == "run" and "shop-worker-jobs" in c][0]
    assert run[run.index("--restart") + 1] == "unless-stopped"
    assert run[run.index("--stop-timeout") + 1] == "300"
    assert "--publish" not in run
    assert "postgres://x:pw@db/x" not in " ".join(run)
    secrets = tmp_path / "state" / "secrets" / "shop-worker-jobs.env"
    assert "DATABASE_URL=postgres://x:pw@db/x" in secrets.read_text()
    mail = docker.containers["shop-worker-mail"]
    assert mail["Config"]["StopTimeout"] == 30
    assert mail["Config"]["Labels"][LABEL_WORKER_OF] == "shop"


def test_second_run_changes_nothing(docker, tmp_path):
    apply(docker, tmp_path)
    docker.calls.clear()

    result = apply(docker, tmp_path)

    assert result["changed"] is False
    assert result["started"] == [] and result["stopped"] == []
    assert docker.calls == []


def test_new_release_stops_the_old_generation_before_the_new_one_starts(docker, tmp_path):
    apply(docker, tmp_path, workers=[{"name": "jobs", "command": ["bin/jobs"]},
                                     {"name": "mail", "command": ["bin/mail"], "stop_timeout": 90}])
    docker.calls.clear()

    result = apply(docker, tmp_path, release="2", workers=[{"name": "jobs", "command": ["bin/jobs"]},
                                                           {"name": "mail", "command": ["bin/mail"],
                                                            "stop_timeout": 90}])

    kinds = [c[0] for c in docker.calls]
    assert kinds.index("run") > max(i for i, k in enumerate(kinds) if k == "stop")
    # Stopped gracefully, each with its own timeout.
    assert ("stop", "--time", "30", "shop-worker-jobs") in docker.calls
    assert ("stop", "--time", "90", "shop-worker-mail") in docker.calls
    assert [s["exit_code"] for s in result["stopped"]] == [0, 0]
    assert result["diff"] == {"before": "jobs: release 1\nmail: release 1\n",
                              "after": "jobs: release 2\nmail: release 2\n"}
    assert {c["Config"]["Labels"][LABEL_RELEASE] for c in docker.containers.values()} == {"2"}


def test_a_worker_killed_at_its_stop_timeout_is_reported(docker, tmp_path):
    apply(docker, tmp_path)
    docker.ignores_sigterm.add("bin/jobs")

    result = apply(docker, tmp_path, release="2")

    assert result["stopped"][0]["exit_code"] == 137


def test_a_changed_secret_replaces_the_worker(docker, tmp_path):
    apply(docker, tmp_path)

    result = apply(docker, tmp_path, secret_env={"DATABASE_URL": "postgres://x:new@db/x"})

    assert result["started"] == ["shop-worker-jobs"]


def test_unlisted_workers_are_pruned_and_absent_ones_removed_without_starting_anything(docker, tmp_path):
    apply(docker, tmp_path, workers=[{"name": "jobs", "command": ["bin/jobs"]},
                                     {"name": "clock", "command": ["bin/clock"]}])

    result = apply(docker, tmp_path, image=None, release=None, workers=[], absent=["clock"], prune=False)
    assert [s["container"] for s in result["stopped"]] == ["shop-worker-clock"]
    assert set(docker.containers) == {"shop-worker-jobs"}
    assert not (tmp_path / "state" / "secrets" / "shop-worker-clock.env").exists()

    result = apply(docker, tmp_path, workers=[])
    assert [s["container"] for s in result["stopped"]] == ["shop-worker-jobs"]
    assert docker.containers == {}


def test_a_stopped_worker_is_started_again(docker, tmp_path):
    apply(docker, tmp_path)
    docker.containers["shop-worker-jobs"]["State"].update(Status="exited", Running=False)

    result = apply(docker, tmp_path)

    assert result["started"] == ["shop-worker-jobs"]
    assert docker.containers["shop-worker-jobs"]["State"]["Status"] == "running"


def test_check_mode_reports_and_changes_nothing(docker, tmp_path):
    apply(docker, tmp_path)
    docker.calls.clear()

    result = apply(docker, tmp_path, check_mode=True, release="2")

    assert result["changed"] is True
    assert result["started"] == ["shop-worker-jobs"]
    assert result["stopped"] == [{"container": "shop-worker-jobs"}]
    assert docker.calls == []


def test_a_worker_that_does_not_stay_up_fails_naming_it_with_its_logs(docker, tmp_path):
    docker.exits_at_once.add("bin/jobz")

    with pytest.raises(WorkersFailed, match=r"Worker jobs \(registry.example/shop:1\) did not stay up: exited "
                                            r"\(exit code 127\).*command not found"):
        apply(docker, tmp_path, workers=[{"name": "jobs", "command": ["bin/jobz"]}])
    assert docker.containers == {}
    assert not (tmp_path / "state" / "secrets" / "shop-worker-jobs.env").exists()


def test_check_mode_before_the_pull_reports_every_worker_replaced(docker, tmp_path):
    apply(docker, tmp_path)

    result = apply(docker, tmp_path, check_mode=True, release="9")

    assert result["started"] == ["shop-worker-jobs"]
    assert result["workers"] == {"shop-worker-jobs": "9"}


def test_a_missing_image_fails_before_anything_stops(docker, tmp_path):
    apply(docker, tmp_path)
    docker.calls.clear()

    with pytest.raises(WorkersFailed, match="shop:9 is not on the node"):
        apply(docker, tmp_path, release="9")
    assert docker.calls == []


def test_a_worker_without_its_own_stop_timeout_gets_the_default(docker, tmp_path):
    # The module's suboptions give every option that was not set as None.
    workers = [{"name": "jobs", "command": ["bin/jobs"], "stop_timeout": None}]
    assert worker_errors(workers, 45) == []

    apply(docker, tmp_path, workers=workers, stop_timeout=45)

    assert docker.containers["shop-worker-jobs"]["Config"]["StopTimeout"] == 45


@pytest.mark.parametrize(("workers", "message"), [
    ([{"name": "Jobs", "command": ["x"]}], "workers[0].name 'Jobs' must be"),
    ([{"name": "a", "command": ["x"]}, {"name": "a", "command": ["y"]}], "workers[1].name 'a' is given twice"),
    ([{"name": "a", "command": []}], "workers[0].command must be a non-empty list"),
    ([{"name": "a", "command": ["x"], "stop_timeout": 0}], "workers[0].stop_timeout 0 must be"),
])
def test_bad_workers_are_named(workers, message):
    assert any(e.startswith(message) for e in worker_errors(workers, 30)), worker_errors(workers, 30)
