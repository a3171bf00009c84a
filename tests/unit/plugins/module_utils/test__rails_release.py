"""ReleaseSwap against a node simulated in memory (_fake_rails_node.Node: a fake docker CLI, a fake proxy and
fake health checks), its files real in a temp dir."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from _fake_rails_node import HOST, IMAGE, PROXY, PROXY_PORT, Node, image_id

from ansible_collections.railsdeploy.aws.plugins.module_utils._app_container import SECRETS_TARGET
from ansible_collections.railsdeploy.aws.plugins.module_utils._rails_release import (
    LABEL_FINGERPRINT,
    LABEL_RELEASE,
    LABEL_SLOT,
    DeployFailed,
    proxy_workers,
)


@pytest.fixture
def node(tmp_path: Path) -> Node:
    root = tmp_path / "node"
    root.mkdir()
    return Node(root)


@pytest.fixture
def live(node: Node) -> Node:
    """Release 1 serves from blue behind a running proxy; the record starts after that."""
    node.deploy(release="1")
    node.start_proxy()
    node.events.clear()
    return node


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- first deploy ---------------------------------------------------------------------------------------------------


def test_first_deploy_starts_blue_and_writes_the_backend(node: Node):
    result = node.deploy(release="1")

    assert result["changed"] is True
    assert result["slot"] == "blue"
    assert result["container"] == "shop-blue"
    assert result["previous_release"] is None
    assert result["proxy_reloaded"] is False
    assert result["pulled"] is False
    assert result["retained"] == [f"{IMAGE}:1"]
    assert result["diff"] == {"before": "release: None\n", "after": "release: 1\n"}

    assert node.running("shop-blue")
    assert "shop-green" not in node.containers
    backend = node.backend()
    assert "server shop-blue 127.0.0.1:3001" in backend
    assert "X-Railsdeploy-Slot blue" in backend
    assert 'X-Railsdeploy-Release "1"' in backend
    assert node.docker_calls("kill") == []  # no proxy to reload
    assert node.docker_calls("stop") == []

    assert node.retained() == [f"{IMAGE}:1"]
    assert [h["release"] for h in node.history()] == ["1"]
    assert node.history()[0] == {"release": "1", "image": f"{IMAGE}:1", "image_id": image_id("1"),
                                 "deployed_at": "2026-11-25T04:30:00Z"}
    assert node.audit() == [{"time": "2026-11-25T04:30:00Z", "host": HOST, "user": "alice@laptop", "from": None,
                             "to": "1", "result": "success"}]


def test_the_container_gets_its_secrets_from_a_private_file_only(node: Node):
    node.deploy(release="1")

    container = node.containers["shop-blue"]
    secrets_file = node.root / "state" / "secrets" / "shop-blue.env"
    assert "SECRET_KEY_BASE='s3cret-value'" in secrets_file.read_text() or \
        "SECRET_KEY_BASE=s3cret-value" in secrets_file.read_text()
    assert mode_of(node.root / "state") == 0o700
    assert mode_of(node.root / "state" / "secrets") == 0o700
    assert mode_of(secrets_file) == 0o444
    assert "s3cret-value" not in json.dumps(container)  # nothing docker inspect would show
    assert container["Config"]["Env"] == ["RAILS_ENV=production"]
    assert container["Options"]["--mount"] == [f"type=bind,source={secrets_file},target={SECRETS_TARGET},readonly"]
    assert container["Options"]["--publish"] == ["127.0.0.1:3001:3000"]
    assert container["Options"]["--restart"] == ["unless-stopped"]
    assert container["Config"]["Cmd"][-2:] == ["./bin/rails", "server"]
    labels = container["Config"]["Labels"]
    assert labels["team"] == "web"
    assert labels[LABEL_RELEASE] == "1"
    assert labels[LABEL_SLOT] == "blue"
    assert len(labels[LABEL_FINGERPRINT]) == 32


# -- second deploy --------------------------------------------------------------------------------------------------


def test_a_new_release_goes_to_green_and_the_old_one_stops_only_after_the_switch(live: Node):
    result = live.deploy(release="2")

    assert result["changed"] is True
    assert result["slot"] == "green"
    assert result["container"] == "shop-green"
    assert result["previous_release"] == "1"
    assert result["proxy_reloaded"] is True
    assert result["retained"] == [f"{IMAGE}:2", f"{IMAGE}:1"]
    assert live.running("shop-green")
    assert "shop-blue" not in live.containers
    assert not (live.root / "state" / "secrets" / "shop-blue.env").exists()
    assert (live.root / "state" / "secrets" / "shop-green.env").exists()

    # the order: start green, health check green directly, reload the proxy (with the new backend written),
    # confirm through the proxy that green answers, drain, then stop and remove blue
    run = live.index(next(e for e in live.events if e[:2] == ("docker", "run")))
    healthy = live.index(("probe", 3002, "/up", 200, None))
    reload = live.index(("docker", "kill", "--signal", "USR2", PROXY))
    confirmed = live.index(("probe", PROXY_PORT, "/up", 200, "green"))
    drain = live.index(("sleep", 3.0))
    stop = live.index(("docker", "stop", "--time", "30", "shop-blue"))
    remove = live.index(("docker", "rm", "--force", "shop-blue"))
    assert run < healthy < reload < confirmed < drain < stop < remove
    assert "server shop-green 127.0.0.1:3002" in live.backend_at_reload[-1]
    assert "server shop-green 127.0.0.1:3002" in live.backend()
    assert live.proxy_target == ("green", 3002)
    # nothing touched blue before the switch was confirmed
    assert not any(e[0] == "docker" and "shop-blue" in e and e[1] in ("stop", "rm", "kill")
                   for e in live.events[:confirmed])

    assert live.audit()[-1]["from"] == "1"
    assert live.audit()[-1]["to"] == "2"
    assert live.audit()[-1]["result"] == "success"
    # this proxy's workers cannot be watched (not master-worker): the drain takes the whole drain_seconds
    assert result["drained"] == "waited drain_seconds (no proxy worker to watch)"
    assert result["drain_seconds"] == 3.0


def test_the_drain_ends_when_the_proxys_old_worker_has_exited(node: Node):
    node.deploy(release="1")
    node.start_proxy(master_worker=True)
    node.old_worker_drain = 0.35
    node.events.clear()

    result = node.deploy(release="2")

    assert result["drained"] == "the proxy's old worker exited"
    assert 0.35 <= result["drain_seconds"] < 0.5
    assert ("sleep", 3.0) not in node.events
    reload = node.index(("docker", "kill", "--signal", "USR2", PROXY))
    stop = node.index(("docker", "stop", "--time", "30", "shop-blue"))
    # the old worker was looked up before the reload, and blue stopped only once it had gone
    assert any(e == ("workers", 100) for e in node.events[:reload])
    assert node.workers(100) == {102}
    assert stop > reload and node.t >= 0.35
    assert not node.running("shop-blue") and node.running("shop-green")


def test_a_worker_that_never_finishes_is_given_drain_seconds_then_the_old_release_stops(node: Node):
    node.deploy(release="1")
    node.start_proxy(master_worker=True)
    node.old_worker_drain = float("inf")
    node.events.clear()
    swap = node.swap(release="2")

    result = swap.run()

    assert result["drained"] == "drain_seconds reached"
    assert 3.0 <= result["drain_seconds"] < 3.2
    assert "the proxy's old worker still held connections after 3 s (drain_seconds)" in swap.messages
    assert not node.running("shop-blue") and node.running("shop-green")


def test_proxy_workers_are_the_children_of_the_master_read_from_proc(tmp_path: Path):
    proc = tmp_path / "proc"
    stats = {
        "1": "1 (init) S 0 1 1",
        "100": "100 (haproxy) S 1 100 100",
        "101": "101 (haproxy) S 100 100 100",
        "205": "205 (odd) (name) S 100 100 100",  # a comm with spaces and parentheses
        "300": "300 (bash) S 1 300 300",
    }
    for pid, text in stats.items():
        (proc / pid).mkdir(parents=True)
        (proc / pid / "stat").write_text(text + " 0 0 0\n")
    (proc / "self").mkdir()

    assert proxy_workers(100, proc=str(proc)) == {101, 205}
    assert proxy_workers(0, proc=str(proc)) == set()
    assert proxy_workers(999, proc=str(proc)) == set()


def test_the_third_release_goes_back_to_blue(live: Node):
    live.deploy(release="2")
    result = live.deploy(release="3")

    assert result["slot"] == "blue"
    assert live.running("shop-blue")
    assert "shop-green" not in live.containers
    assert live.proxy_target == ("blue", 3001)


def test_history_keeps_the_newest_releases(live: Node):
    live.deploy(release="2", keep_releases=2)
    result = live.deploy(release="3", keep_releases=2)

    assert result["retained"] == [f"{IMAGE}:3", f"{IMAGE}:2"]
    assert live.retained() == [f"{IMAGE}:3", f"{IMAGE}:2"]
    assert [h["release"] for h in live.history()] == ["3", "2"]


def test_a_rollback_does_not_retain_a_release_twice(live: Node):
    live.deploy(release="2")
    result = live.deploy(release="1")

    assert result["slot"] == "blue"
    assert result["previous_release"] == "2"
    assert result["retained"] == [f"{IMAGE}:1", f"{IMAGE}:2"]
    assert live.retained() == [f"{IMAGE}:1", f"{IMAGE}:2"]
    assert [h["release"] for h in live.history()] == ["1", "2"]


# -- nothing to do --------------------------------------------------------------------------------------------------


def test_the_same_release_with_the_same_settings_changes_nothing(live: Node):
    before = live.files()

    result = live.deploy(release="1")

    assert result["changed"] is False
    assert result["needs_change"] is False
    assert result["slot"] == "blue"
    assert result["container"] == "shop-blue"
    assert result["retained"] == [f"{IMAGE}:1"]
    assert live.docker_calls("run") == []
    assert live.docker_calls("kill") == [] and live.docker_calls("stop") == [] and live.docker_calls("rm") == []
    assert live.files() == before  # no audit line either


def test_release_headers_go_only_to_the_nodes_own_requests(live: Node):
    backend = live.backend()

    assert 'set-header X-Railsdeploy-Release "1" if { src 127.0.0.1 }' in backend
    assert "set-header X-Railsdeploy-Slot blue if { src 127.0.0.1 }" in backend


def test_a_backend_that_sends_the_headers_to_everyone_is_renewed_by_the_next_deploy(live: Node):
    """A node deployed by an older version (release and slot headers on every response) gets the node-only
    headers on its next run, even of the same release."""
    old = live.backend().replace(" if { src 127.0.0.1 }", "")
    (live.root / "proxy" / "backend.cfg").write_text(old)

    result = live.deploy(release="1")

    assert result["changed"] is True
    assert "if { src 127.0.0.1 }" in live.backend()
    assert live.deploy(release="1")["changed"] is False


@pytest.mark.parametrize(
    "change",
    [
        {"env": {"RAILS_ENV": "production", "RAILS_MAX_THREADS": "5"}},
        {"secret_env": {"SECRET_KEY_BASE": "rotated"}},
        {"command": ["./bin/thrust", "./bin/rails", "server"]},
        {"container_port": 8080},
        {"run_options": ["--memory", "512m"]},
    ],
)
def test_the_same_release_with_changed_settings_is_redeployed(live: Node, change: dict):
    result = live.deploy(release="1", **change)

    assert result["changed"] is True
    assert result["slot"] == "green"
    assert result["previous_release"] == "1"
    assert live.running("shop-green")
    assert "shop-blue" not in live.containers
    assert live.containers["shop-green"]["Config"]["Labels"][LABEL_RELEASE] == "1"
    assert [h["release"] for h in live.history()] == ["1"]
    # and deploying the same again is a no-op
    live.events.clear()
    assert live.deploy(release="1", **change)["changed"] is False
    assert live.docker_calls("run") == []


def test_changed_env_reaches_the_new_container(live: Node):
    live.deploy(release="1", env={"RAILS_ENV": "production", "RAILS_MAX_THREADS": "5"})

    assert live.containers["shop-green"]["Config"]["Env"] == ["RAILS_ENV=production", "RAILS_MAX_THREADS=5"]


def test_a_stopped_live_container_is_redeployed(live: Node):
    live.containers["shop-blue"]["State"] = {"Running": False, "ExitCode": 1}

    result = live.deploy(release="1")

    assert result["changed"] is True
    assert result["slot"] == "green"
    assert live.running("shop-green")


# -- failures -------------------------------------------------------------------------------------------------------


def assert_old_release_untouched(node: Node, backend_before: str) -> None:
    assert node.backend() == backend_before
    assert node.running("shop-blue")
    assert "shop-green" not in node.containers
    assert not (node.root / "state" / "secrets" / "shop-green.env").exists()
    assert (node.root / "state" / "secrets" / "shop-blue.env").exists()
    assert not any(e[0] == "docker" and e[1] in ("stop", "rm") and "shop-blue" in e for e in node.events)
    assert [h["release"] for h in node.history()] == ["1"]
    assert node.retained() == [f"{IMAGE}:1"]
    assert node.proxy_target == ("blue", 3001)


def test_a_failing_health_check_keeps_the_old_release(live: Node):
    live.behaviour["2"] = "500"
    backend_before = live.backend()

    with pytest.raises(DeployFailed) as failure:
        live.deploy(release="2")

    message = str(failure.value)
    assert HOST in message
    assert "GET http://127.0.0.1:3002/up" in message
    assert "no 200 within 10 s" in message
    assert "HTTP 500" in message
    assert "shop-green was removed" in message
    assert failure.value.details["container_logs"] == ["Booting Puma", "ActiveRecord::ConnectionNotEstablished"]
    assert live.t >= 10  # it waited for the whole timeout
    assert ("docker", "rm", "--force", "shop-green") in live.events
    assert live.docker_calls("kill") == []  # the proxy was never told
    assert_old_release_untouched(live, backend_before)
    audit = live.audit()[-1]
    assert audit["result"] == "failed"
    assert audit["from"] == "1" and audit["to"] == "2" and audit["host"] == HOST
    assert "failed its health check" in audit["detail"]


def test_a_booting_release_is_switched_to_within_a_poll_of_its_first_healthy_answer(live: Node):
    """The health check is polled sub-second: a release that boots in 1.3 s is seen healthy by 1.55 s (a one-second
    poll saw it at 2 s), so a deploy waits for boots, not for its own polling."""
    started = live.t
    live.behaviour["2"] = f"boots_at:{started + 1.3}"

    live.deploy(release="2")

    seen = live.first_healthy_answer[3002] - started
    assert 1.3 <= seen < 1.3 + 0.3, f"the first 200 was seen {seen:.2f} s after the start"
    assert live.proxy_target == ("green", 3002)


def test_a_container_that_exits_fails_at_once(live: Node):
    live.behaviour["2"] = "exits"
    backend_before = live.backend()

    with pytest.raises(DeployFailed, match=r"the container exited \(code 1\); last check: ConnectionRefusedError") \
            as failure:
        live.deploy(release="2")

    assert HOST in str(failure.value)
    assert "GET http://127.0.0.1:3002/up" in str(failure.value)
    assert live.t < 10  # did not wait for the timeout
    assert_old_release_untouched(live, backend_before)
    assert live.audit()[-1]["result"] == "failed"


def test_a_failing_first_deploy_leaves_no_backend(node: Node):
    node.behaviour["1"] = "500"

    with pytest.raises(DeployFailed, match="failed its health check"):
        node.deploy(release="1")

    assert node.backend() is None
    assert node.containers == {}
    assert node.audit()[-1]["result"] == "failed"
    assert node.audit()[-1]["from"] is None


def test_a_proxy_that_does_not_switch_gets_its_backend_back(live: Node):
    live.proxy_ignores_reload = True
    backend_before = live.backend()

    with pytest.raises(DeployFailed) as failure:
        live.deploy(release="2")

    message = str(failure.value)
    assert HOST in message
    assert f"the proxy {PROXY} did not switch to shop-green" in message
    assert "no answer from slot green through port 8080 within 5 s" in message
    assert "X-Railsdeploy-Slot: blue" in message
    assert "previous backend was restored" in message
    reloads = live.docker_calls("kill")
    assert reloads == [("docker", "kill", "--signal", "USR2", PROXY)] * 2  # the switch, then the restore
    switch, restore = [i for i, e in enumerate(live.events) if e == reloads[0]]
    removals = [i for i, e in enumerate(live.events) if e == ("docker", "rm", "--force", "shop-green")]
    assert removals[0] < switch < restore < removals[-1]  # the idle slot cleared before, green removed after
    assert_old_release_untouched(live, backend_before)
    assert live.audit()[-1]["result"] == "failed"
    assert "did not switch" in live.audit()[-1]["detail"]


def test_when_docker_run_fails_the_old_release_stays(live: Node):
    live.run_fails = "docker: Error response from daemon: driver failed programming external connectivity"
    backend_before = live.backend()

    with pytest.raises(DeployFailed, match=rf"{HOST}: could not start shop-green \({IMAGE}:2\): .*driver failed"):
        live.deploy(release="2")

    assert_old_release_untouched(live, backend_before)
    assert live.audit()[-1]["result"] == "failed"


def test_an_image_with_nothing_to_run_is_a_failed_deploy(live: Node):
    live.images[f"{IMAGE}:2"]["Config"] = {"Entrypoint": None, "Cmd": None}
    backend_before = live.backend()

    with pytest.raises(DeployFailed, match="could not start shop-green .*neither ENTRYPOINT nor CMD"):
        live.deploy(release="2")

    assert live.docker_calls("run") == []
    assert_old_release_untouched(live, backend_before)
    assert live.audit()[-1]["result"] == "failed"


def test_a_leftover_container_in_the_idle_slot_is_replaced(live: Node):
    live.containers["shop-green"] = {"Id": "x", "Name": "shop-green", "Image": "sha256:old",
                                     "State": {"Running": False, "ExitCode": 1}, "Config": {"Labels": {}}}

    result = live.deploy(release="2")

    assert result["slot"] == "green"
    assert live.containers["shop-green"]["Image"] == image_id("2")


# -- check mode and images ------------------------------------------------------------------------------------------


def test_check_mode_on_a_new_node_changes_nothing(node: Node):
    result = node.deploy(check_mode=True, release="1")

    assert result["changed"] is True
    assert result["slot"] == "blue"
    assert result["container"] == "shop-blue"
    assert node.files() == {}
    assert not (node.root / "state").exists()
    assert node.containers == {}
    assert {e[1] for e in node.events if e[0] == "docker"} <= {"container", "image"}


def test_check_mode_reports_the_new_release_and_changes_nothing(live: Node):
    before = live.files()

    result = live.deploy(check_mode=True, release="2")

    assert result["changed"] is True
    assert result["slot"] == "green"
    assert result["previous_release"] == "1"
    assert live.files() == before
    assert {e[1] for e in live.events if e[0] == "docker"} <= {"container", "image"}
    assert not [e for e in live.events if e[0] in ("probe", "sleep")]


def test_check_mode_for_the_live_release_reports_no_change(live: Node):
    assert live.deploy(check_mode=True, release="1")["changed"] is False


def test_check_mode_says_whether_the_release_is_on_the_node_so_that_a_plan_pulls_only_what_is_missing(live: Node):
    live.images.pop(f"{IMAGE}:3")
    live.add_image("3", where="registry")

    assert live.deploy(check_mode=True, release="2")["image_present"] is True
    assert live.deploy(check_mode=True, release="3")["image_present"] is False
    assert live.deploy(check_mode=True, release="1")["image_present"] is True
    assert live.docker_calls("pull") == []


def test_a_missing_image_with_pull_false_fails_before_anything_runs(live: Node):
    backend_before = live.backend()

    with pytest.raises(DeployFailed, match=rf"Image {IMAGE}:9 is not on {HOST} and pull is false"):
        live.deploy(release="9")

    assert live.docker_calls("pull") == []
    assert live.docker_calls("run") == []
    assert live.docker_calls("rm") == []
    assert live.backend() == backend_before
    assert live.running("shop-blue")
    assert live.audit()[-1]["result"] == "failed"


def test_a_missing_image_is_pulled_when_pull_is_true(live: Node):
    live.add_image("7", where="registry")

    result = live.deploy(release="7", pull=True)

    assert result["pulled"] is True
    assert result["slot"] == "green"
    assert live.docker_calls("pull") == [("docker", "pull", "--quiet", f"{IMAGE}:7")]
    assert live.index(live.docker_calls("pull")[0]) < live.index(live.docker_calls("run")[0])


def test_an_image_that_cannot_be_pulled_fails_before_anything_runs(live: Node):
    backend_before = live.backend()

    with pytest.raises(DeployFailed, match=rf"Could not pull {IMAGE}:8 on {HOST}: .*manifest for"):
        live.deploy(release="8", pull=True)

    assert live.docker_calls("run") == []
    assert live.backend() == backend_before
    assert live.running("shop-blue")


def test_a_first_deploy_behind_a_running_proxy_reloads_it(node: Node):
    node.start_proxy()  # no backend file yet: the proxy answers 503

    result = node.deploy(release="1")

    assert result["slot"] == "blue"
    assert result["proxy_reloaded"] is True
    assert node.proxy_target == ("blue", 3001)
    assert node.docker_calls("stop") == []
    assert ("probe", PROXY_PORT, "/up", 200, "blue") in node.events
    assert ("sleep", 3.0) not in node.events  # nothing to drain


def test_a_first_deploy_behind_a_proxy_that_does_not_switch_removes_the_backend(node: Node):
    node.start_proxy()
    node.proxy_ignores_reload = True

    with pytest.raises(DeployFailed, match="did not switch to shop-blue"):
        node.deploy(release="1")

    assert node.backend() is None
    assert node.containers.keys() == {PROXY}
