"""Unit tests for the pure-Python parts of the lab's test app (lab/images/testapp/app).

The app is not an installed package: its modules are imported from their path. ``config`` and
``assets`` need only the standard library; ``db`` (psycopg2) is not imported here.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from pathlib import Path

import pytest

APP_DIR = Path(__file__).resolve().parents[3] / "lab" / "images" / "testapp" / "app"


def _import(name: str):
    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    module = importlib.import_module(name)
    assert Path(module.__file__).is_relative_to(APP_DIR), f"{name} imported from {module.__file__}"
    return module


config = _import("testapp.config")
assets = _import("testapp.assets")
schema = _import("testapp.schema")
ConfigError = config.ConfigError


# --- DATABASE_URL -----------------------------------------------------------------------------------


def test_parse_full_url():
    assert config.parse_database_url("postgres://app:s3cret@db.internal:6543/app_production") == {
        "host": "db.internal", "port": 6543, "user": "app", "password": "s3cret", "dbname": "app_production",
    }


def test_parse_defaults_port_and_accepts_postgresql_scheme():
    params = config.parse_database_url("postgresql://app:pw@10.0.1.5/app")
    assert params["port"] == 5432 and params["host"] == "10.0.1.5"


def test_parse_percent_decodes_credentials_and_database():
    params = config.parse_database_url("postgres://us%40er:p%40ss%3A%2Fw%25rd@db/my%20db")
    assert params["user"] == "us@er"
    assert params["password"] == "p@ss:/w%rd"
    assert params["dbname"] == "my db"


def test_parse_ipv6_host_and_query_options():
    params = config.parse_database_url("postgres://app:pw@[fd00::5]:5433/app?sslmode=require&connect_timeout=5")
    assert params["host"] == "fd00::5" and params["port"] == 5433
    assert params["sslmode"] == "require" and params["connect_timeout"] == "5"


def test_parse_socket_url_without_host():
    params = config.parse_database_url("postgres:///app?host=/var/run/postgresql")
    assert params == {"dbname": "app", "host": "/var/run/postgresql"}


def test_parse_empty_password_is_kept():
    assert config.parse_database_url("postgres://app:@db/app")["password"] == ""


@pytest.mark.parametrize("url, message", [
    ("mysql://app:pw@db/app", "postgres://"),
    ("postgres://app:pw@db:notaport/app", "not a valid URL"),
    ("postgres://app:pw@db:99999/app", "not a valid URL"),
    ("postgres://app:topsecret@db", "names no database"),
])
def test_parse_rejects_bad_urls_without_leaking_the_password(url, message):
    with pytest.raises(ConfigError, match=message) as excinfo:
        config.parse_database_url(url)
    assert "topsecret" not in str(excinfo.value) and "pw@" not in str(excinfo.value)


def test_describe_database_never_shows_the_password():
    params = config.parse_database_url("postgres://app:hunter2@db:5432/app")
    assert config.describe_database(params) == "app@db:5432/app"


# --- environment and *_FILE -------------------------------------------------------------------------


def test_env_or_file_reads_the_file_and_strips_newline(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("abc123\n")
    assert config.env_or_file({"SECRET_KEY_BASE_FILE": str(secret)}, "SECRET_KEY_BASE") == "abc123"


def test_env_or_file_prefers_nothing_when_both_are_set(tmp_path):
    with pytest.raises(ConfigError, match="both SECRET_KEY_BASE and SECRET_KEY_BASE_FILE"):
        config.env_or_file({"SECRET_KEY_BASE": "x", "SECRET_KEY_BASE_FILE": "/nope"}, "SECRET_KEY_BASE")


def test_env_or_file_missing_file_and_required(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        config.env_or_file({"DATABASE_URL_FILE": str(tmp_path / "missing")}, "DATABASE_URL")
    with pytest.raises(ConfigError, match=r"SECRET_KEY_BASE \(or SECRET_KEY_BASE_FILE\) must be set"):
        config.env_or_file({"SECRET_KEY_BASE": ""}, "SECRET_KEY_BASE", required=True)


def _app_root(tmp_path: Path, release: str | None) -> Path:
    if release is not None:
        (tmp_path / "RELEASE").write_text(release + "\n")
    return tmp_path


def test_config_from_env_defaults_and_secret_not_in_repr(tmp_path):
    env = {"DATABASE_URL": "postgres://app:dbpass@db/app", "SECRET_KEY_BASE": "very-secret-value"}
    cfg = config.Config.from_env(env, app_root=_app_root(tmp_path, "2"))
    assert (cfg.port, cfg.rails_env, cfg.release, cfg.app_revision, cfg.asset_host, cfg.broken) == (
        3000, "production", "2", "2", "", False)
    assert "very-secret-value" not in repr(cfg) and "dbpass" not in repr(cfg)


def test_config_from_env_overrides(tmp_path):
    env = {"DATABASE_URL": "postgres://app:pw@db/app", "SECRET_KEY_BASE": "k", "PORT": "8080", "RAILS_ENV": "staging",
           "APP_REVISION": "abc123", "ASSET_HOST": "https://cdn.example.com", "APP_BROKEN": "1"}
    cfg = config.Config.from_env(env, app_root=_app_root(tmp_path, "1"))
    got = (cfg.port, cfg.rails_env, cfg.release, cfg.app_revision, cfg.broken)
    assert got == (8080, "staging", "1", "abc123", True)


def test_config_requires_secret_key_base_but_tasks_may_skip_it(tmp_path):
    env = {"DATABASE_URL": "postgres://app:pw@db/app"}
    with pytest.raises(ConfigError, match="SECRET_KEY_BASE"):
        config.Config.from_env(env, app_root=tmp_path)
    assert config.Config.from_env(env, require_secret=False, app_root=tmp_path).secret_key_base is None


@pytest.mark.parametrize("port", ["abc", "0", "70000"])
def test_config_rejects_bad_port(tmp_path, port):
    env = {"DATABASE_URL": "postgres://app:pw@db/app", "SECRET_KEY_BASE": "k", "PORT": port}
    with pytest.raises(ConfigError, match="PORT"):
        config.Config.from_env(env, app_root=tmp_path)


def test_release_defaults_to_dev_without_release_file(tmp_path):
    assert config.read_release(tmp_path) == "dev"


# --- assets ------------------------------------------------------------------------------------------


def _sources(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "application.css").write_text("/* release {{release}} */ body { color: red; }\n")
    (src / "application.js").write_text('window.APP_RELEASE = "{{release}}";\n')
    (src / "README.txt").write_text("not an asset\n")
    return src


def test_fingerprinted_name_is_sha256_prefix_of_content():
    content = b"body { color: red; }"
    name = assets.fingerprinted_name("application.css", content)
    digest = hashlib.sha256(content).hexdigest()
    assert name == f"application-{digest[:assets.DIGEST_LENGTH]}.css"


def test_precompile_writes_digested_files_and_manifest(tmp_path):
    out = tmp_path / "public" / "assets"
    manifest = assets.precompile(_sources(tmp_path), out, "1")
    assert set(manifest) == {"application.css", "application.js"}
    for logical, name in manifest.items():
        content = (out / name).read_bytes()
        assert b'"{{release}}"' not in content and b"1" in content
        assert name == assets.fingerprinted_name(logical, content)
        assert hashlib.sha256(content).hexdigest().startswith(name.rsplit("-", 1)[1].split(".")[0])
    assert json.loads((out / ".manifest.json").read_text()) == manifest
    assert assets.load_manifest(out) == manifest


def test_releases_get_different_names_and_same_release_is_reproducible(tmp_path):
    src = _sources(tmp_path)
    one = assets.precompile(src, tmp_path / "r1", "1")
    two = assets.precompile(src, tmp_path / "r2", "2")
    again = assets.precompile(src, tmp_path / "r1-again", "1")
    assert one == again
    assert all(one[k] != two[k] for k in one)


def test_load_manifest_missing_or_broken_is_empty(tmp_path):
    assert assets.load_manifest(tmp_path) == {}
    (tmp_path / ".manifest.json").write_text("{not json")
    assert assets.load_manifest(tmp_path) == {}


@pytest.mark.parametrize("host, expected", [
    ("", "/assets/application-abc.css"),
    ("https://d111.cloudfront.net", "https://d111.cloudfront.net/assets/application-abc.css"),
    ("https://d111.cloudfront.net/", "https://d111.cloudfront.net/assets/application-abc.css"),
    ("cdn.example.com", "//cdn.example.com/assets/application-abc.css"),
])
def test_asset_url_uses_asset_host(host, expected):
    assert assets.asset_url({"application.css": "application-abc.css"}, "application.css", host) == expected


def test_asset_url_falls_back_to_logical_name():
    assert assets.asset_url({}, "application.js") == "/assets/application.js"


def test_shipped_assets_render_the_release(tmp_path):
    manifest = assets.precompile(APP_DIR / "assets", tmp_path, "7")
    assert set(manifest) == {"application.css", "application.js"}
    assert all(b"7" in (tmp_path / name).read_bytes() for name in manifest.values())


# --- migrations per release ----------------------------------------------------------------------------


def _versions(migrations) -> list[str]:
    return [m.version for m in migrations]


def test_release_2_has_one_more_migration_than_release_1():
    one = schema.migrations_for_release("1")
    two = schema.migrations_for_release("2")
    assert len(two) == len(one) + 1 and _versions(two)[: len(one)] == _versions(one)


def test_non_numeric_release_ships_every_migration():
    assert _versions(schema.migrations_for_release("broken")) == _versions(schema.MIGRATIONS)


def test_migration_versions_are_unique_and_ordered():
    versions = _versions(schema.MIGRATIONS)
    assert versions == sorted(set(versions))


def test_pending_migrations_skips_applied_and_unknown_versions():
    two = schema.migrations_for_release("2")
    applied = {two[0].version, "29990101000000"}  # the second one: applied by a later release
    assert _versions(schema.pending_migrations(two, applied)) == _versions(two[1:])
    assert schema.pending_migrations(schema.migrations_for_release("1"), set(_versions(two))) == []
