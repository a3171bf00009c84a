"""``bin/rails``: the database tasks a deploy runs in a one-off container of the app image.

    bin/rails db:create            create the database when it does not exist
    bin/rails db:migrate           apply the pending migrations of this release (idempotent)
    bin/rails db:prepare           db:create + db:migrate
    bin/rails db:seed              insert the seed rows (idempotent: rows already there are kept)
    bin/rails db:migrate:status    list the migrations and whether each is applied
    bin/rails db:version           print the current schema version

Several tasks may be given in one call (``bin/rails db:prepare db:seed``); they run in order and the
first failure stops the call with a non-zero exit status and a message on stderr.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Mapping

import psycopg2
from psycopg2 import sql

from . import db, schema
from .config import Config, ConfigError, describe_database

USAGE = __doc__.split("\n\n")[1]


class TaskError(Exception):
    pass


def _connect(config: Config, **kwargs) -> psycopg2.extensions.connection:
    try:
        return db.connect(config.db_params, **kwargs)
    except psycopg2.OperationalError as exc:
        raise TaskError(f"cannot connect to {describe_database(config.db_params)}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def db_create(config: Config) -> None:
    try:
        db.connect(config.db_params).close()
        print(f"Database '{config.db_params['dbname']}' already exists")
        return
    except psycopg2.OperationalError as exc:
        if "does not exist" not in str(exc) or "database" not in str(exc):
            raise TaskError(f"cannot connect to {describe_database(config.db_params)}: {_first_line(exc)}") from None
    maintenance = dataclasses.replace(config, db_params={**config.db_params, "dbname": "postgres"})
    conn = _connect(maintenance)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(config.db_params["dbname"]))))
    finally:
        conn.close()
    print(f"Created database '{config.db_params['dbname']}'")


def db_migrate(config: Config) -> None:
    conn = _connect(config)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (schema.MIGRATION_LOCK_ID,))
            cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version varchar PRIMARY KEY)")
            pending = schema.pending_migrations(schema.migrations_for_release(config.release), db.applied_versions(cur))
        for migration in pending:
            _apply(conn, migration)
        if not pending:
            print(f"Schema is up to date for release {config.release} (nothing to migrate)")
    finally:
        conn.close()  # also releases the advisory lock


def _apply(conn: psycopg2.extensions.connection, migration: schema.Migration) -> None:
    print(f"== {migration.version} {migration.name}: migrating " + "=" * 20, flush=True)
    started = time.monotonic()
    conn.autocommit = False
    try:
        with conn, conn.cursor() as cur:  # one transaction: the change and its version row
            for statement in migration.statements:
                cur.execute(statement)
            cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (migration.version,))
    except psycopg2.Error as exc:
        raise TaskError(f"migration {migration.version} {migration.name} failed: {_first_line(exc)}") from None
    finally:
        conn.autocommit = True
    print(f"== {migration.version} {migration.name}: migrated ({time.monotonic() - started:.4f}s) " + "=" * 10)


def db_prepare(config: Config) -> None:
    db_create(config)
    db_migrate(config)


def db_seed(config: Config) -> None:
    conn = _connect(config)
    try:
        with conn.cursor() as cur:
            if not db.table_exists(cur, "notes"):
                raise TaskError("the schema is not loaded (no notes table): run bin/rails db:prepare first")
            inserted = 0
            for text in schema.SEED_NOTES:
                cur.execute(
                    "INSERT INTO notes (text) SELECT %s WHERE NOT EXISTS (SELECT 1 FROM notes WHERE text = %s)",
                    (text, text),
                )
                inserted += cur.rowcount
    finally:
        conn.close()
    total = len(schema.SEED_NOTES)
    print(f"Seeded {inserted} of {total} notes ({total - inserted} were already there)")


def _applied_versions(config: Config) -> set[str]:
    conn = _connect(config)
    try:
        with conn.cursor() as cur:
            return db.applied_versions(cur)
    finally:
        conn.close()


def db_migrate_status(config: Config) -> None:
    applied = _applied_versions(config)
    print(f"database: {config.db_params['dbname']}\n\n Status   Migration ID    Migration Name\n" + "-" * 50)
    known = {m.version: m.name for m in schema.migrations_for_release(config.release)}
    for version in sorted(known.keys() | applied):
        status = "up" if version in applied else "down"
        print(f"   {status:<7}{version}  {known.get(version, '********** NO FILE **********')}")


def db_version(config: Config) -> None:
    applied = _applied_versions(config)
    print(f"Current version: {max(applied) if applied else 0}")


TASKS: dict[str, Callable[[Config], None]] = {
    "db:create": db_create,
    "db:migrate": db_migrate,
    "db:prepare": db_prepare,
    "db:seed": db_seed,
    "db:migrate:status": db_migrate_status,
    "db:version": db_version,
}


def main(argv: list[str], environ: Mapping[str, str] = os.environ) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print("Usage:\n" + USAGE, file=sys.stderr if not argv else sys.stdout)
        return 1 if not argv else 0
    unknown = [a for a in argv if a not in TASKS]
    if unknown:
        print(f"bin/rails: unrecognized command {unknown[0]!r}; known: {', '.join(TASKS)}", file=sys.stderr)
        return 1
    try:
        config = Config.from_env(environ, require_secret=False)
    except ConfigError as exc:
        print(f"bin/rails: {exc}", file=sys.stderr)
        return 1
    for task in argv:
        try:
            TASKS[task](config)
        except TaskError as exc:
            print(f"bin/rails {task}: error: {exc}", file=sys.stderr)
            return 1
        except psycopg2.Error as exc:
            print(f"bin/rails {task}: database error: {_first_line(exc)}", file=sys.stderr)
            return 1
    return 0
