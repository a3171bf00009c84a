"""Unit tests for roles/postgres_backup/files/railsdeploy-postgres-backup: retention with a floor, the status a user
reads, and that a failed backup expires nothing. pgBackRest and psql are replaced by a fake container; the real
ones run in the lab (molecule/postgres, the backup drills)."""

from __future__ import annotations

import json

import pytest
from lablib.scripts import load_script

script = load_script("postgres_backup", "railsdeploy-postgres-backup")

DAY = 86400.0
NOW = 2_000_000_000.0


def _backup(label: str, days_ago: float, kind: str = "full") -> dict:
    stop = NOW - days_ago * DAY
    return {"label": label, "type": kind, "timestamp": {"start": stop - 60, "stop": stop},
            "info": {"repository": {"delta": 1048576}}}


@pytest.mark.parametrize(("days_ago", "days", "min_full", "keep"), [
    ([0, 1, 2, 20, 30], 14, 2, 4),   # three within 14 days, plus the newest older one
    ([0, 20, 30, 40], 14, 2, 2),     # one recent, the newest older: 2 (also the floor)
    ([0, 20, 30, 40], 14, 3, 3),     # backups stopped for a while: the floor keeps three
    ([20, 30, 40], 14, 2, 2),        # none recent (backups failing): nothing below the floor, the newest older kept
    ([0, 1], 14, 2, 2),              # nothing old enough to expire
    ([0, 1, 2, 3], 1, 1, 3),         # 1 day: 0 and 1 (exactly a day ago is within), plus the newest older
])
def test_retention_keeps_the_window_and_the_newest_older_full_never_below_the_floor(days_ago, days, min_full, keep):
    assert script.fulls_to_keep([NOW - d * DAY for d in days_ago], NOW, days, min_full) == keep


class FakeContainer:
    """pgBackRest's info/backup/expire and PostgreSQL's pg_stat_archiver, as `docker exec` would answer."""

    def __init__(self, backups: list[dict], archiver: dict, backup_fails: bool = False, running: bool = True,
                 read_with: str = "", replica: bool = False) -> None:
        self.backups, self.archiver, self.backup_fails, self.is_running = backups, archiver, backup_fails, running
        self.replica = replica
        # The server's container mounts /etc/pgbackrest; reads through a one-off container use read_with.
        self.read_with = read_with or "/etc/pgbackrest"
        self.calls: list[list[str]] = []
        self.one_off_calls: list[list[str]] = []

    def run(self, argv, capture_output, text, check):
        if argv[:2] == ["docker", "inspect"]:
            if not self.is_running:
                return _proc(1, "", "Error: No such object: postgres")
            return _proc(0, "/etc/pgbackrest\n" if ".Mounts" in argv[3] else "true\n")
        if argv[:2] == ["docker", "exec"]:
            assert self.is_running, argv
            assert argv[:5] == ["docker", "exec", "-u", "postgres", "postgres"], argv
            inner = argv[5:]
        else:
            assert argv[:5] == ["docker", "run", "--rm", "--user", "postgres"], argv
            assert argv[5:8] == ["--mount", f"type=bind,source={self.read_with},target=/etc/pgbackrest,readonly",
                                 "registry.example/postgres:15"], argv
            inner = argv[8:]
            self.one_off_calls.append(inner)
        self.calls.append(inner)
        if inner[0] == "sh" and inner[-1] == "select pg_is_in_recovery()":
            return _proc(0, "t\n" if self.replica else "f\n")
        if inner[0] == "sh":
            return _proc(0, json.dumps({**self.archiver, "now": NOW}))
        args = inner[2:]
        if args == ["--output=json", "info"]:
            return _proc(0, json.dumps([{"name": "s", "status": {"code": 0, "message": "ok"}, "backup": self.backups}]))
        if args[-1] == "backup":
            if self.backup_fails:
                return _proc(82, "", "ERROR: [082]: WAL segment 000000010000000000000009 was not archived before the"
                                     " 60000ms timeout")
            self.backups.append(_backup("20260101-000000F", 0))
            return _proc(0, "")
        if args[-1] == "expire":
            keep = int(next(a for a in args if a.startswith("--repo1-retention-full=")).split("=")[1])
            fulls = sorted((b for b in self.backups if b["type"] == "full"), key=lambda b: b["timestamp"]["stop"])
            doomed = {b["label"] for b in fulls[:-keep]}
            self.backups = [b for b in self.backups if b["label"] not in doomed]
            return _proc(0, "")
        raise AssertionError(f"unexpected call {inner}")


def _proc(rc: int, out: str, err: str = ""):
    import subprocess
    return subprocess.CompletedProcess([], rc, out, err)


ARCHIVED = {"last_archived_wal": "00000001000000000000000A", "last_archived_time": NOW - 30, "failed_count": 0,
            "last_failed_wal": None, "last_failed_time": None}


def _run(monkeypatch, capsys, fake, *argv) -> tuple[int, dict]:
    monkeypatch.setattr(script.subprocess, "run", fake.run)
    monkeypatch.setattr(script.time, "time", lambda: NOW)
    rc = script.main(list(argv))
    return rc, json.loads(capsys.readouterr().out)


def test_a_backup_expires_old_fulls_beyond_the_window_and_reports_what_a_restore_can_reach(monkeypatch, capsys):
    fake = FakeContainer([_backup("OLD3", 40), _backup("OLD2", 30), _backup("OLD1", 20), _backup("REC", 3)], ARCHIVED)
    rc, out = _run(monkeypatch, capsys, fake, "backup", "--stanza", "s", "--retention-days", "14", "--min-full", "2")
    assert rc == 0, out
    assert out["backup"]["label"] == "20260101-000000F"
    assert out["kept_full"] == 3 and out["expired"] == ["OLD2", "OLD3"]
    status = out["status"]
    assert status["full_backups"] == 3 and status["last_full_backup"] == "20260101-000000F"
    assert status["oldest_restorable_time"] == script.iso(NOW - 20 * DAY)
    assert status["newest_restorable_time"] == script.iso(NOW - 30)
    assert status["last_archived_age_seconds"] == 30.0 and not status["archiving_failing"]


def test_on_a_replica_the_backup_is_skipped_saying_so_and_nothing_is_taken_or_expired(monkeypatch, capsys):
    """The cron job runs on every PostgreSQL node: a standby leaves the backups to the leader."""
    fake = FakeContainer([_backup("OLD3", 40), _backup("OLD2", 30), _backup("REC", 3)], ARCHIVED, replica=True)
    rc, out = _run(monkeypatch, capsys, fake, "backup", "--stanza", "s", "--retention-days", "14", "--min-full", "1")
    assert rc == 0, out
    assert out["backup"] is None and out["skipped"].startswith("not the leader")
    assert not any(call[-1] in ("backup", "expire") for call in fake.calls)
    assert [b["label"] for b in fake.backups] == ["OLD3", "OLD2", "REC"]
    assert out["status"]["full_backups"] == 3


def test_a_failed_backup_expires_nothing_and_says_why(monkeypatch, capsys):
    fake = FakeContainer([_backup("OLD2", 30), _backup("OLD1", 20)], ARCHIVED, backup_fails=True)
    rc, out = _run(monkeypatch, capsys, fake, "backup", "--stanza", "s", "--retention-days", "14", "--min-full", "1")
    assert rc == 1 and out["failed"]
    assert "was not archived before the 60000ms timeout" in out["msg"]
    assert not any(call[-1] == "expire" for call in fake.calls)
    assert [b["label"] for b in fake.backups] == ["OLD2", "OLD1"]


def test_status_reports_a_failing_archive_command(monkeypatch, capsys):
    failing = {**ARCHIVED, "failed_count": 7, "last_failed_wal": "00000001000000000000000B",
               "last_failed_time": NOW - 5}
    rc, out = _run(monkeypatch, capsys, FakeContainer([_backup("F", 1)], failing), "status", "--stanza", "s")
    assert rc == 0
    assert out["status"]["archiving_failing"] and out["status"]["archive_failed_count"] == 7
    # A failure followed by a success is history, not a failing archive.
    recovered = {**failing, "last_failed_time": NOW - 60}
    rc, out = _run(monkeypatch, capsys, FakeContainer([_backup("F", 1)], recovered), "status", "--stanza", "s")
    assert not out["status"]["archiving_failing"]


def test_on_a_replica_the_archive_it_no_longer_runs_is_not_reported_failing(monkeypatch, capsys):
    """An old leader that rejoined as a replica keeps its pg_stat_archiver: the segment its shutdown could not archive
    is not a failing archive (the leader archives now)."""
    failed_at_shutdown = {**ARCHIVED, "failed_count": 1, "last_failed_wal": "00000002000000000000000B",
                          "last_failed_time": NOW - 5}
    fake = FakeContainer([_backup("F", 1)], failed_at_shutdown, replica=True)
    rc, out = _run(monkeypatch, capsys, fake, "status", "--stanza", "s")
    assert rc == 0
    assert out["status"]["replica"] and out["status"]["server_answers"]
    assert not out["status"]["archiving_failing"] and out["status"]["last_archived_age_seconds"] is None
    assert out["status"]["full_backups"] == 1


def test_an_empty_repository_reports_no_restorable_time(monkeypatch, capsys):
    rc, out = _run(monkeypatch, capsys, FakeContainer([], ARCHIVED), "status", "--stanza", "s")
    assert rc == 0
    assert out["status"]["full_backups"] == 0
    assert out["status"]["oldest_restorable_time"] is None and out["status"]["newest_restorable_time"] is None


def test_status_still_reads_the_repository_when_postgresql_does_not_answer(monkeypatch, capsys):
    """The volume is gone or the server stopped: a restore still needs to know what the repository holds."""
    fake = FakeContainer([_backup("F1", 3), _backup("F2", 1)], ARCHIVED)
    real_run = fake.run

    def psql_down(argv, **kwargs):
        if argv[5:6] == ["sh"]:
            return _proc(2, "", "psql: error: connection to server on socket failed")
        return real_run(argv, **kwargs)

    fake.run = psql_down
    rc, out = _run(monkeypatch, capsys, fake, "status", "--stanza", "s")
    assert rc == 0
    status = out["status"]
    assert status["server_answers"] is False and status["backup_labels"] == ["F1", "F2"]
    assert status["oldest_restorable_time"] == script.iso(NOW - 3 * DAY)
    assert status["last_archived_wal"] is None and not status["archiving_failing"]


def test_without_the_container_the_repository_is_read_through_a_one_off_container_of_the_image(monkeypatch, capsys):
    """A new node before a restore: no PostgreSQL container yet, but the repository must still be read."""
    fake = FakeContainer([_backup("F1", 2)], ARCHIVED, running=False)
    rc, out = _run(monkeypatch, capsys, fake, "status", "--stanza", "s", "--image", "registry.example/postgres:15")
    assert rc == 0, out
    assert out["status"]["server_answers"] is False and out["status"]["backup_labels"] == ["F1"]
    assert not any(call[0] == "sh" for call in fake.calls), "psql was called without a server"


def test_another_configuration_than_the_servers_reads_the_repository_through_a_one_off_container(monkeypatch, capsys):
    """A restore reads the repository with its own settings (another bucket or prefix) before it changes anything:
    not through the running server, whose configuration is what it archives with."""
    fake = FakeContainer([_backup("F1", 2)], ARCHIVED, read_with="/etc/pgbackrest-restore")
    rc, out = _run(monkeypatch, capsys, fake, "status", "--stanza", "s", "--image", "registry.example/postgres:15",
                   "--config-dir", "/etc/pgbackrest-restore")
    assert rc == 0, out
    assert out["status"]["backup_labels"] == ["F1"]
    assert [call[2:] for call in fake.one_off_calls] == [["--output=json", "info"]]
    # The server still answers for its archive (pg_stat_archiver), through its own container.
    assert out["status"]["server_answers"] is True


def test_the_servers_own_configuration_reads_through_the_server(monkeypatch, capsys):
    fake = FakeContainer([_backup("F1", 2)], ARCHIVED, read_with="/nowhere")
    rc, out = _run(monkeypatch, capsys, fake, "status", "--stanza", "s", "--image", "registry.example/postgres:15",
                   "--config-dir", "/etc/pgbackrest")
    assert rc == 0, out
    assert out["status"]["backup_labels"] == ["F1"]
    assert fake.one_off_calls == []
