"""Base backup and restore of a PostgreSQL database of at least 1 GiB (pgbench -i), in the lab.

Setup: the lab's environment is provisioned and PostgreSQL deployed (provision.yml, deploy_postgres.yml: no-ops
when `make demo` or the deploy benchmark ran); a database `bench` is filled with `pgbench -i` at a scale of about
1.1 GiB. Then, as a user runs them:
  (a) `backup_postgres.yml -e backup_type=full`: a full base backup to the S3 repository (pgBackRest, lz4, 2
      processes), with retention and the status report;
  (b) `restore_postgres.yml -e restore_verify_only=true`: the restore test - the newest backup restored onto a
      scratch volume, PostgreSQL started on it, the WAL since the backup replayed, promoted, queried, deleted.
Prints `backup_db_gib`, `backup_full_seconds`, `backup_full_seconds_per_gib` (the playbook's wall clock),
`backup_full_pgbackrest_seconds` (pgBackRest's own start-to-stop), `backup_repository_mib` (what the backup
added to the repository), `restore_seconds`, `restore_seconds_per_gib` (the restore test's wall clock: pgBackRest
restore, start, replay, promotion, the scratch volume made and deleted). Afterwards the `bench` database is
dropped (its backups age out with retention).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCALE = 75  # pgbench scale factor: about 15 MiB each, tables and indexes (75: 1.1 GiB)
DATABASE = "bench"
PLAYBOOK_TIMEOUT = 3600
GIB = 1024 ** 3


def note(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def figure(name: str, value) -> None:
    print(f"{name}: {value}", flush=True)


def run(argv: list[str], *, what: str) -> tuple[str, float]:
    """Run a command in the repo; (stdout, seconds). Raises SystemExit naming ``what`` on failure."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env, timeout=PLAYBOOK_TIMEOUT)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-3000:])
        raise SystemExit(f"{what} failed (rc {proc.returncode})")
    return proc.stdout, elapsed


def on_primary(*argv: str, what: str) -> str:
    """A command on the PostgreSQL primary (as root, over SSH as every playbook); its stdout."""
    out, _ = run(["ansible", "postgres_primary", "--become", "-o", "-m", "ansible.builtin.command",
                  "-a", json.dumps({"argv": list(argv)})], what=what)
    # ansible -o: "host | CHANGED | rc=0 | (stdout) <text>"; newlines come as literal \n.
    return out.split("(stdout) ", 1)[1].strip().replace("\\n", "\n") if "(stdout) " in out else ""


def timed_playbook(name: str, gib: float, *argv: str) -> str:
    """Run a playbook as a user does; print ``<name>_seconds`` and ``<name>_seconds_per_gib``; its stdout."""
    out, seconds = run(["ansible-playbook", *argv], what=" ".join(argv))
    figure(f"{name}_seconds", f"{seconds:.1f}")
    figure(f"{name}_seconds_per_gib", f"{seconds / gib:.1f}")
    return out


def psql(sql: str, *, database: str = "postgres", what: str) -> str:
    return on_primary("docker", "exec", "-u", "postgres", "postgres", "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1",
                      "-U", "postgres", "-d", database, "-c", sql, what=what)  # the superuser, on the node


def main() -> int:
    os.environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    run(["ansible-playbook", "playbooks/provision.yml"], what="provision.yml")
    run(["ansible-playbook", "playbooks/deploy_postgres.yml"], what="deploy_postgres.yml")

    psql(f"DROP DATABASE IF EXISTS {DATABASE}", what="dropping an old bench database")
    psql(f"CREATE DATABASE {DATABASE}", what="creating the bench database")
    try:
        started = time.monotonic()
        on_primary("docker", "exec", "-u", "postgres", "postgres", "pgbench", "-i", "-q", "-I", "dtGvp",
                   "-s", str(SCALE), "-U", "postgres", DATABASE, what=f"pgbench -i -s {SCALE}")
        fill = time.monotonic() - started
        size = int(psql("select sum(pg_database_size(datname)) from pg_database", what="the cluster's size"))
        gib = size / GIB
        figure("backup_db_gib", f"{gib:.2f}")
        note(f"pgbench -i -s {SCALE} took {fill:.1f} s; the cluster holds {size / 1048576:.0f} MiB")

        timed_playbook("backup_full", gib, "playbooks/backup_postgres.yml", "-e", "backup_type=full")
        stanza = json.loads(on_primary("docker", "exec", "-u", "postgres", "postgres", "pgbackrest", "--output=json",
                                       "info", what="pgbackrest info"))[0]
        newest = max(stanza["backup"], key=lambda b: b["timestamp"]["stop"])
        figure("backup_full_pgbackrest_seconds", newest["timestamp"]["stop"] - newest["timestamp"]["start"])
        figure("backup_repository_mib", f"{newest['info']['repository']['delta'] / 1048576:.1f}")
        note(f"backup {newest['label']}: database {newest['info']['size'] / 1048576:.0f} MiB")

        out = timed_playbook("restore", gib, "playbooks/restore_postgres.yml", "-e", "restore_verify_only=true")
        found = [ln.strip() for ln in out.splitlines() if "Restore test passed" in ln]
        note(found[0] if found else "restore test: no report line found")
    finally:
        psql(f"DROP DATABASE IF EXISTS {DATABASE}", what="dropping the bench database")
    return 0


if __name__ == "__main__":
    sys.exit(main())
