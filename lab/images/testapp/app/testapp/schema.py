"""The schema: migrations (which release ships which) and seed rows. Pure data, no database access."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    since_release: int  # first release of the app that ships this migration
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration("20240101000001", "CreateNotes", 1, (
        "CREATE TABLE notes (id bigserial PRIMARY KEY, text text NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now())",
    )),
    Migration("20240101000002", "CreateVisits", 1, (
        "CREATE TABLE visits (id bigserial PRIMARY KEY, path text NOT NULL DEFAULT '/', "
        "created_at timestamptz NOT NULL DEFAULT now())",
    )),
    Migration("20240102000001", "CreateJobs", 1, (
        "CREATE TABLE jobs (id bigserial PRIMARY KEY, note_id bigint, seconds integer NOT NULL DEFAULT 0, "
        "enqueued_at timestamptz NOT NULL DEFAULT now(), started_at timestamptz, finished_at timestamptz, "
        "worker text)",
    )),
    # Release 2: an additive change (with a default), so release 1 keeps working on the new schema.
    Migration("20240201000001", "AddAuthorToNotes", 2, (
        "ALTER TABLE notes ADD COLUMN author text NOT NULL DEFAULT 'anonymous'",
    )),
)

MIGRATION_LOCK_ID = 0x7261696C73  # pg_advisory_lock key: one migrator at a time ("rails")


def migrations_for_release(release: str) -> list[Migration]:
    """The migrations an image of ``release`` ships: those since a release <= it. A release that is not a
    number (``broken``, ``dev``, a git sha) ships them all."""
    try:
        number = int(release)
    except ValueError:
        return list(MIGRATIONS)
    return [m for m in MIGRATIONS if m.since_release <= number]


def pending_migrations(available: list[Migration], applied: set[str]) -> list[Migration]:
    return sorted((m for m in available if m.version not in applied), key=lambda m: m.version)


# --- seeds -------------------------------------------------------------------------------------------

SEED_NOTES = (
    "Welcome to the railsdeploy lab.",
    "This note was written by bin/rails db:seed.",
    "Rows written here must survive a restart of PostgreSQL.",
)
