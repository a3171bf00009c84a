"""deploy_lock run in-process with its module args; the lock directory lives in a temp dir."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.testing import patch_module_args

from ansible_collections.railsdeploy.aws.plugins.modules import deploy_lock

HINT = "ansible-playbook playbooks/deploy_rails.yml -e rails_app_unlock=true"


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    return tmp_path / "locks" / "deploy_rails"


def run(monkeypatch, capsys, check_mode: bool = False, **args) -> dict:
    monkeypatch.setattr(module_utils_internal, "is_controller", False)
    with patch_module_args({"_ansible_check_mode": check_mode, **args}), pytest.raises(SystemExit) as exit_:
        deploy_lock.main()
    result = json.loads(capsys.readouterr().out)
    result["rc"] = exit_.value.code
    return result


def holder(lock: Path) -> dict:
    return json.loads((lock / "holder.json").read_text())


def hold(lock: Path, age: int = 0, **record) -> None:
    """Another run's lock, taken ``age`` seconds ago."""
    lock.mkdir(parents=True, exist_ok=True)
    since = int(time.time()) - age
    data = {"run_id": "run-other", "holder": "bob@desk",
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)),
            "since_epoch": since, "details": {"release": "41"}, **record}
    (lock / "holder.json").write_text(json.dumps(data))


def test_take_creates_the_lock_with_the_holders_details(monkeypatch, capsys, lock: Path):
    before = int(time.time())

    result = run(monkeypatch, capsys, path=str(lock), run_id="run-1", holder="alice@laptop",
                 details={"release": "42"})

    assert result["rc"] == 0, result
    assert result["changed"] is True
    assert lock.is_dir()
    stored = holder(lock)
    assert stored["run_id"] == "run-1"
    assert stored["holder"] == "alice@laptop"
    assert stored["details"] == {"release": "42"}
    assert before <= stored["since_epoch"] <= int(time.time())
    assert stored["since"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stored["since_epoch"]))
    assert result["lock"] == stored
    assert sorted(os.listdir(lock)) == ["holder.json"]  # no temp file left


def test_the_same_run_taking_it_again_changes_nothing(monkeypatch, capsys, lock: Path):
    run(monkeypatch, capsys, path=str(lock), run_id="run-1", holder="alice@laptop", details={"release": "42"})
    stored = holder(lock)

    result = run(monkeypatch, capsys, path=str(lock), run_id="run-1", holder="alice@laptop",
                 details={"release": "42"})

    assert result["rc"] == 0, result
    assert result["changed"] is False
    assert result["lock"] == stored
    assert holder(lock) == stored
    assert result["age_seconds"] >= 0


@pytest.mark.parametrize("check_mode", [False, True])
def test_another_run_is_refused_naming_holder_release_age_and_the_way_out(monkeypatch, capsys, lock: Path,
                                                                           check_mode: bool):
    hold(lock, age=125)
    stored = holder(lock)

    result = run(monkeypatch, capsys, check_mode, path=str(lock), run_id="run-1", holder="alice@laptop")

    assert result["rc"] == 1
    assert result["failed"] is True
    msg = result["msg"]
    assert "Another deploy holds the deploy lock" in msg
    assert "bob@desk" in msg
    assert "run run-other" in msg
    assert "release 41" in msg
    assert stored["since"] in msg
    assert re.search(r"\b2 min [5-7] s ago\b", msg), msg
    assert str(lock) in msg
    assert HINT in msg
    assert 125 <= result["age_seconds"] <= 127
    assert result["lock"] == stored
    assert holder(lock) == stored  # untouched


def test_the_release_hint_is_configurable(monkeypatch, capsys, lock: Path):
    hold(lock)

    result = run(monkeypatch, capsys, path=str(lock), run_id="run-1", release_hint="make unlock")

    assert result["msg"].endswith("release the lock with: make unlock")


def test_a_lock_without_holder_file_is_still_held(monkeypatch, capsys, lock: Path):
    lock.mkdir(parents=True)

    result = run(monkeypatch, capsys, path=str(lock), run_id="run-1")

    assert result["rc"] == 1
    assert "an unknown holder" in result["msg"]
    assert lock.is_dir()


def test_the_owner_releases_it(monkeypatch, capsys, lock: Path):
    run(monkeypatch, capsys, path=str(lock), run_id="run-1", holder="alice@laptop")
    stored = holder(lock)

    result = run(monkeypatch, capsys, path=str(lock), run_id="run-1", state="absent")

    assert result["rc"] == 0, result
    assert result["changed"] is True
    assert result["lock"] == stored
    assert not lock.exists()
    assert lock.parent.is_dir()


def test_another_run_cannot_release_it(monkeypatch, capsys, lock: Path):
    hold(lock, age=30)

    result = run(monkeypatch, capsys, path=str(lock), run_id="run-1", state="absent")

    assert result["rc"] == 1
    assert "bob@desk" in result["msg"]
    assert "not by this run" in result["msg"]
    assert HINT in result["msg"]
    assert lock.is_dir()
    assert holder(lock)["run_id"] == "run-other"


def test_force_releases_anyones_lock(monkeypatch, capsys, lock: Path):
    hold(lock, age=3600)

    result = run(monkeypatch, capsys, path=str(lock), run_id="manual", state="absent", force=True)

    assert result["rc"] == 0, result
    assert result["changed"] is True
    assert result["lock"]["run_id"] == "run-other"
    assert result["age_seconds"] >= 3600
    assert not lock.exists()


def test_releasing_no_lock_changes_nothing(monkeypatch, capsys, lock: Path):
    result = run(monkeypatch, capsys, path=str(lock), run_id="run-1", state="absent")

    assert result["rc"] == 0, result
    assert result["changed"] is False
    assert not lock.exists()


def test_check_mode_takes_nothing(monkeypatch, capsys, lock: Path):
    result = run(monkeypatch, capsys, check_mode=True, path=str(lock), run_id="run-1", holder="alice@laptop")

    assert result["rc"] == 0, result
    assert result["changed"] is True
    assert result["lock"]["run_id"] == "run-1"
    assert not lock.exists()
    assert not lock.parent.exists()


def test_check_mode_releases_nothing(monkeypatch, capsys, lock: Path):
    hold(lock)

    result = run(monkeypatch, capsys, check_mode=True, path=str(lock), run_id="manual", state="absent", force=True)

    assert result["rc"] == 0, result
    assert result["changed"] is True
    assert lock.is_dir()


def test_a_trailing_slash_names_the_same_lock(monkeypatch, capsys, lock: Path):
    run(monkeypatch, capsys, path=str(lock) + "/", run_id="run-1")

    assert holder(lock)["run_id"] == "run-1"
    assert run(monkeypatch, capsys, path=str(lock), run_id="run-1")["changed"] is False


def test_losing_the_race_for_mkdir_fails_naming_the_winner(monkeypatch, capsys, lock: Path):
    """Another deploy creates the directory between this one's look and its mkdir."""
    lock.parent.mkdir(parents=True)
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if os.fspath(path) == str(lock):
            real_mkdir(path)
            hold(lock)
            raise FileExistsError(17, "File exists", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)

    result = run(monkeypatch, capsys, path=str(lock), run_id="run-1")

    assert result["rc"] == 1
    assert "took the deploy lock just now" in result["msg"]
    assert "bob@desk" in result["msg"]
    assert holder(lock)["run_id"] == "run-other"
