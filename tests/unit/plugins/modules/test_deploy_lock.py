"""deploy_lock run in-process with its module args; the lock directory lives in a temp dir, the etcd backend talks
to an in-process fake of etcd's JSON gateway (_fake_etcd.py)."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from _fake_etcd import FakeEtcd
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.testing import patch_module_args

from ansible_collections.railsdeploy.aws.plugins.modules import deploy_lock

HINT = "ansible-playbook playbooks/unlock.yml"


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


# backend=etcd, against the in-process fake of etcd 3.4's JSON gateway (tests/unit/plugins/modules/_fake_etcd.py).

KEY = "/railsdeploy-locks/x/deploy"


@pytest.fixture
def etcd():
    with FakeEtcd() as fake:
        yield fake


def run_etcd(monkeypatch, capsys, etcd: FakeEtcd, lock: Path, check_mode: bool = False, **args) -> dict:
    """The module with backend=etcd; the legacy lock directory is ``lock`` (absent unless a test makes it)."""
    return run(monkeypatch, capsys, check_mode, **{"backend": "etcd", "etcd_url": etcd.url, "key": KEY,
                                                   "path": str(lock), **args})


def hold_etcd(etcd: FakeEtcd, age: int = 0, **record) -> dict:
    """Another run's etcd lock, taken ``age`` seconds ago."""
    since = int(time.time()) - age
    data = {"run_id": "run-other", "holder": "bob@desk",
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)),
            "since_epoch": since, "details": {"release": "41"}, **record}
    etcd.put(KEY, json.dumps(data).encode())
    return data


def test_etcd_take_on_an_empty_store_stores_the_holders_record(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    before = int(time.time())

    result = run_etcd(monkeypatch, capsys, etcd, lock, run_id="run-1", holder="alice@laptop",
                      details={"release": "42"})

    assert result["rc"] == 0, result
    assert result["changed"] is True
    stored = etcd.get_json(KEY)
    assert stored["run_id"] == "run-1"
    assert stored["holder"] == "alice@laptop"
    assert stored["details"] == {"release": "42"}
    assert before <= stored["since_epoch"] <= int(time.time())
    assert result["lock"] == stored
    assert not lock.exists()  # the directory backend is not used
    assert not lock.parent.exists()


def test_etcd_the_same_run_taking_it_again_changes_nothing(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    run_etcd(monkeypatch, capsys, etcd, lock, run_id="run-1", holder="alice@laptop")
    before = etcd.snapshot()

    result = run_etcd(monkeypatch, capsys, etcd, lock, run_id="run-1", holder="alice@laptop")

    assert result["rc"] == 0, result
    assert result["changed"] is False
    assert result["lock"] == etcd.get_json(KEY)
    assert result["age_seconds"] >= 0
    assert etcd.snapshot() == before


@pytest.mark.parametrize("check_mode", [False, True])
def test_etcd_another_run_is_refused_naming_holder_release_age_and_the_way_out(monkeypatch, capsys, etcd: FakeEtcd,
                                                                                lock: Path, check_mode: bool):
    stored = hold_etcd(etcd, age=125)
    before = etcd.snapshot()

    result = run_etcd(monkeypatch, capsys, etcd, lock, check_mode, run_id="run-1", holder="alice@laptop")

    assert result["rc"] == 1
    msg = result["msg"]
    assert msg.startswith("Another deploy holds the deploy lock: bob@desk (run run-other, release 41) since "), msg
    assert stored["since"] in msg
    assert re.search(r"\b2 min [5-7] s ago\b", msg), msg
    assert f"(etcd key {KEY})" in msg
    assert msg.endswith(f"If it is no longer running (interrupted), release the lock with: {HINT}")
    assert 125 <= result["age_seconds"] <= 127
    assert result["lock"] == stored
    assert etcd.snapshot() == before  # untouched


def test_etcd_the_owner_releases_it(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    run_etcd(monkeypatch, capsys, etcd, lock, run_id="run-1", holder="alice@laptop")
    stored = etcd.get_json(KEY)

    result = run_etcd(monkeypatch, capsys, etcd, lock, run_id="run-1", state="absent")

    assert result["rc"] == 0, result
    assert result["changed"] is True
    assert result["lock"] == stored
    assert etcd.get(KEY) is None
    # The delete was guarded by the exact bytes that were read.
    assert etcd.requests[-1]["compare"] == [{"key": base64.b64encode(KEY.encode()).decode(), "result": "EQUAL",
                                             "target": "VALUE", "value": base64.b64encode(
                                                 json.dumps(stored, sort_keys=True).encode()).decode()}]


def test_etcd_another_run_cannot_release_it_without_force(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    stored = hold_etcd(etcd, age=30)

    result = run_etcd(monkeypatch, capsys, etcd, lock, run_id="run-1", state="absent")

    assert result["rc"] == 1
    assert "bob@desk" in result["msg"]
    assert "not by this run" in result["msg"]
    assert f"etcd key {KEY}" in result["msg"]
    assert HINT in result["msg"]
    assert etcd.get_json(KEY) == stored
    assert etcd.writes() == []


def test_etcd_force_releases_anyones_lock(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    hold_etcd(etcd, age=3600)

    result = run_etcd(monkeypatch, capsys, etcd, lock, run_id="manual", state="absent", force=True)

    assert result["rc"] == 0, result
    assert result["changed"] is True
    assert result["lock"]["run_id"] == "run-other"
    assert result["age_seconds"] >= 3600
    assert etcd.get(KEY) is None
    assert etcd.requests[-1]["compare"][0]["target"] == "MOD"


def test_etcd_force_deletes_nothing_that_changed_after_the_read(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    """Another run takes the lock between this run's read and its delete: the delete is refused, the new holder
    named."""
    hold_etcd(etcd)
    real_txn = deploy_lock.EtcdLock.txn

    def txn(self, compare, success, failure=()):
        if any("request_delete_range" in op for op in success):
            hold_etcd(etcd, run_id="run-new", holder="carol@box")
        return real_txn(self, compare, success, failure)

    monkeypatch.setattr(deploy_lock.EtcdLock, "txn", txn)

    result = run_etcd(monkeypatch, capsys, etcd, lock, run_id="manual", state="absent", force=True)

    assert result["rc"] == 1
    assert "changed while this run released it" in result["msg"]
    assert "carol@box (run run-new" in result["msg"]
    assert etcd.get_json(KEY)["run_id"] == "run-new"


def test_etcd_releasing_no_lock_changes_nothing(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    result = run_etcd(monkeypatch, capsys, etcd, lock, run_id="run-1", state="absent")

    assert result["rc"] == 0, result
    assert result["changed"] is False
    assert etcd.writes() == []


def test_etcd_check_mode_takes_nothing(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    before = etcd.snapshot()

    result = run_etcd(monkeypatch, capsys, etcd, lock, check_mode=True, run_id="run-1", holder="alice@laptop")

    assert result["rc"] == 0, result
    assert result["changed"] is True
    assert result["lock"]["run_id"] == "run-1"
    assert etcd.snapshot() == before
    assert etcd.writes() == []


@pytest.mark.parametrize("force", [False, True])
def test_etcd_check_mode_releases_nothing(monkeypatch, capsys, etcd: FakeEtcd, lock: Path, force: bool):
    hold_etcd(etcd, run_id="run-1")
    hold(lock, run_id="run-1")
    before = etcd.snapshot()

    result = run_etcd(monkeypatch, capsys, etcd, lock, check_mode=True, run_id="run-1", state="absent", force=force)

    assert result["rc"] == 0, result
    assert result["changed"] is True
    assert etcd.snapshot() == before
    assert etcd.writes() == []
    assert holder(lock)["run_id"] == "run-1"


@pytest.mark.parametrize("check_mode", [False, True])
def test_etcd_take_honours_the_legacy_lock_directory_of_another_run(monkeypatch, capsys, etcd: FakeEtcd,
                                                                    lock: Path, check_mode: bool):
    hold(lock, age=65)

    result = run_etcd(monkeypatch, capsys, etcd, lock, check_mode, run_id="run-1")

    assert result["rc"] == 1
    msg = result["msg"]
    assert f"a deploy of an earlier release holds the lock in {lock}" in msg
    assert "bob@desk (run run-other, release 41)" in msg
    assert re.search(r"\b1 min [5-7] s ago\b", msg), msg
    assert msg.endswith(HINT)
    assert result["legacy_lock"]["run_id"] == "run-other"
    assert etcd.get(KEY) is None
    # refused before anything is written to etcd (the one request is the read that finds the member)
    assert [op for request in etcd.requests for op in request['success'] if 'request_range' not in op] == []
    assert holder(lock)["run_id"] == "run-other"


def test_etcd_take_passes_this_runs_own_legacy_directory(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    hold(lock, run_id="run-1")

    result = run_etcd(monkeypatch, capsys, etcd, lock, run_id="run-1")

    assert result["rc"] == 0, result
    assert etcd.get_json(KEY)["run_id"] == "run-1"


def test_etcd_force_release_removes_the_legacy_lock_directory_too(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    hold(lock)
    hold_etcd(etcd, run_id="run-2")

    result = run_etcd(monkeypatch, capsys, etcd, lock, run_id="manual", state="absent", force=True)

    assert result["rc"] == 0, result
    assert result["changed"] is True
    assert result["legacy_lock"]["run_id"] == "run-other"
    assert not lock.exists()
    assert etcd.get(KEY) is None


def test_etcd_release_leaves_another_runs_legacy_directory(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    hold(lock)
    hold_etcd(etcd, run_id="run-1")

    result = run_etcd(monkeypatch, capsys, etcd, lock, run_id="run-1", state="absent")

    assert result["rc"] == 0, result
    assert etcd.get(KEY) is None
    assert holder(lock)["run_id"] == "run-other"


def refusing_url() -> str:
    """A URL where nothing listens: the connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("state", ["present", "absent"])
def test_etcd_unreachable_fails_naming_the_url(monkeypatch, capsys, lock: Path, state: str):
    url = refusing_url()

    result = run(monkeypatch, capsys, backend="etcd", etcd_url=url, key=KEY, path=str(lock), run_id="run-1",
                 state=state)

    assert result["rc"] == 1
    assert f"etcd could not be used for the deploy lock (etcd key {KEY})" in result["msg"]
    assert url in result["msg"] and "refused" in result["msg"].lower(), result["msg"]
    assert "The lock was not changed" in result["msg"]
    assert not lock.exists()


def test_etcd_an_error_answer_fails_with_etcds_message(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    result = run_etcd(monkeypatch, capsys, etcd, lock, run_id="run-1", etcd_url=etcd.url + "/nothere")

    assert result["rc"] == 1
    assert f"{etcd.url}/nothere: HTTP 404" in result["msg"]
    assert etcd.get(KEY) is None


def test_auto_uses_the_directory_when_every_member_refuses(monkeypatch, capsys, lock: Path):
    result = run(monkeypatch, capsys, backend="auto", etcd_url=[refusing_url(), refusing_url()], key=KEY,
                 path=str(lock), run_id="run-1", holder="alice@laptop")

    assert result["rc"] == 0, result
    assert result["changed"] is True and result["backend"] == "directory"
    assert holder(lock)["run_id"] == "run-1"


def test_auto_uses_the_first_member_that_answers(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    result = run(monkeypatch, capsys, backend="auto", etcd_url=[refusing_url(), etcd.url], key=KEY,
                 path=str(lock), run_id="run-1", holder="alice@laptop")

    assert result["rc"] == 0, result
    assert result["backend"] == "etcd" and result["etcd_url"] == etcd.url
    assert etcd.get_json(KEY)["run_id"] == "run-1"
    assert not lock.exists()


def test_auto_honours_a_lock_in_etcd_and_never_falls_back(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    hold_etcd(etcd, age=90)

    result = run(monkeypatch, capsys, backend="auto", etcd_url=[etcd.url], key=KEY, path=str(lock), run_id="run-1")

    assert result["rc"] == 1
    assert "Another deploy holds the deploy lock: bob@desk" in result["msg"]
    assert not lock.exists()


def test_auto_fails_when_a_member_answers_with_an_error_and_none_works(monkeypatch, capsys, etcd: FakeEtcd,
                                                                        lock: Path):
    """A member that answers but cannot serve (here: an error answer) may mean etcd holds a lock it cannot show: the
    directory is not used instead."""
    result = run(monkeypatch, capsys, backend="auto", etcd_url=[refusing_url(), etcd.url + "/nothere"], key=KEY,
                 path=str(lock), run_id="run-1")

    assert result["rc"] == 1
    assert "HTTP 404" in result["msg"] and "The lock was not changed" in result["msg"]
    assert not lock.exists()


def test_auto_releases_the_directory_lock_of_this_run_once_etcd_runs(monkeypatch, capsys, etcd: FakeEtcd,
                                                                      lock: Path):
    """The run that starts etcd (deploy_postgres.yml of a new environment) took the directory lock; its release finds
    etcd and removes the directory lock as its own legacy lock."""
    taken = run(monkeypatch, capsys, backend="auto", etcd_url=[refusing_url()], key=KEY, path=str(lock),
                run_id="run-1")
    assert taken["backend"] == "directory" and lock.exists()

    released = run(monkeypatch, capsys, backend="auto", etcd_url=[etcd.url], key=KEY, path=str(lock),
                   run_id="run-1", state="absent")

    assert released["rc"] == 0, released
    assert released["changed"] is True and released["backend"] == "etcd"
    assert not lock.exists()
    assert etcd.get(KEY) is None


def test_etcd_two_runs_taking_it_at_once_exactly_one_holds_it(etcd: FakeEtcd):
    runs = 8
    start = threading.Barrier(runs)
    outcomes: dict[str, dict | None] = {}

    def take(run_id: str) -> None:
        record = {"run_id": run_id, "holder": run_id, "since": "now", "since_epoch": int(time.time()), "details": {}}
        lock = deploy_lock.EtcdLock(etcd.url, KEY)
        start.wait()
        outcomes[run_id] = lock.create(record)

    threads = [threading.Thread(target=take, args=(f"run-{n}",)) for n in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [run_id for run_id, found in outcomes.items() if found is None]
    assert len(winners) == 1, outcomes
    assert etcd.get_json(KEY)["run_id"] == winners[0]
    assert all(found["run_id"] == winners[0] for found in outcomes.values() if found is not None)


def test_query_reports_the_holder_and_changes_nothing(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    held = hold_etcd(etcd, age=30)

    result = run_etcd(monkeypatch, capsys, etcd, lock, run_id="status", state="query", backend="auto")

    assert result["rc"] == 0 and result["changed"] is False, result
    assert result["lock"]["holder"] == "bob@desk" and 29 <= result["age_seconds"] <= 32
    assert result["backend"] == "etcd"
    assert etcd.get_json(KEY) == held


def test_query_of_a_free_lock_returns_no_holder(monkeypatch, capsys, lock: Path):
    result = run(monkeypatch, capsys, backend="auto", etcd_url=[refusing_url()], key=KEY, path=str(lock),
                 run_id="status", state="query")

    assert result["rc"] == 0 and result["changed"] is False, result
    assert "lock" not in result and result["backend"] == "directory"
    assert not lock.exists()


def test_query_shows_an_earlier_releases_lock_directory(monkeypatch, capsys, etcd: FakeEtcd, lock: Path):
    hold(lock, age=60)

    result = run_etcd(monkeypatch, capsys, etcd, lock, run_id="status", state="query")

    assert result["lock"]["run_id"] == "run-other", result
