"""Settings from the environment, the way the app image contract passes them.

Secrets (``DATABASE_URL``, ``SECRET_KEY_BASE``) may come from a file named by ``<NAME>_FILE``, so that
they stay out of ``docker inspect``. No function here puts a secret into a message or a repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from . import APP_ROOT

DEFAULT_PORT = 3000
URL_SCHEMES = ("postgres", "postgresql")


class ConfigError(Exception):
    """A setting is missing or malformed; the message never contains a secret's value."""


def env_or_file(environ: Mapping[str, str], name: str, *, required: bool = False) -> str | None:
    """Value of ``name``, or the content of the file named by ``name_FILE`` (surrounding whitespace removed).

    Setting both is an error, as in the official postgres image. An empty value counts as unset.
    """
    value = environ.get(name) or None
    path = environ.get(f"{name}_FILE") or None
    if value is not None and path is not None:
        raise ConfigError(f"both {name} and {name}_FILE are set; set only one")
    if path is not None:
        try:
            value = Path(path).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ConfigError(f"{name}_FILE names {path}, which cannot be read: {exc.strerror}") from None
        if value is None:
            raise ConfigError(f"{name}_FILE names {path}, which is empty")
    if value is None and required:
        raise ConfigError(f"{name} (or {name}_FILE) must be set")
    return value


def parse_database_url(url: str) -> dict[str, str | int]:
    """Turn ``postgres://user:pass@host:port/db?opt=val`` into psycopg2/libpq connection keywords.

    User, password and database name are percent-decoded; a bracketed IPv6 host is unbracketed; the port
    defaults to 5432 when a host is given; query parameters (``sslmode=require``, ``connect_timeout=5``,
    ``host=/var/run/postgresql``...) pass through as libpq keywords and win over the URL's parts.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ConfigError("DATABASE_URL is not a valid URL (check the port and brackets)") from None
    if parts.scheme not in URL_SCHEMES:
        raise ConfigError("DATABASE_URL must start with postgres:// or postgresql://")
    params: dict[str, str | int] = {}
    if parts.hostname:
        params["host"] = unquote(parts.hostname)
        params["port"] = port or 5432
    elif port:
        params["port"] = port
    if parts.username:
        params["user"] = unquote(parts.username)
    if parts.password is not None:
        params["password"] = unquote(parts.password)
    dbname = unquote(parts.path.lstrip("/"))
    if dbname:
        params["dbname"] = dbname
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        params[key] = value
    if "dbname" not in params:
        raise ConfigError("DATABASE_URL names no database (postgres://user:pass@host:port/DATABASE)")
    return params


def describe_database(params: Mapping[str, str | int]) -> str:
    """Where the app connects, for logs: never the password."""
    return f"{params.get('user', '?')}@{params.get('host', 'local socket')}:{params.get('port', 5432)}/" \
        f"{params.get('dbname', '?')}"


def read_release(app_root: Path = APP_ROOT) -> str:
    """The release the image was built as (``APP_RELEASE`` build-arg, written to ``/app/RELEASE``)."""
    try:
        return (app_root / "RELEASE").read_text(encoding="utf-8").strip() or "dev"
    except OSError:
        return "dev"


@dataclass(frozen=True)
class Config:
    db_params: dict[str, str | int] = field(repr=False)
    secret_key_base: str | None = field(repr=False)
    rails_env: str
    asset_host: str
    app_revision: str
    release: str
    port: int
    broken: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, require_secret: bool = True,
                 app_root: Path = APP_ROOT) -> Config:
        url = env_or_file(environ, "DATABASE_URL", required=True)
        assert url is not None
        secret = env_or_file(environ, "SECRET_KEY_BASE", required=require_secret)
        port_text = environ.get("PORT") or str(DEFAULT_PORT)
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(f"PORT must be a number, not {port_text!r}") from None
        if not 0 < port < 65536:
            raise ConfigError(f"PORT must be between 1 and 65535, not {port}")
        release = read_release(app_root)
        return cls(
            db_params=parse_database_url(url),
            secret_key_base=secret,
            rails_env=environ.get("RAILS_ENV") or "production",
            asset_host=environ.get("ASSET_HOST", ""),
            app_revision=environ.get("APP_REVISION") or release,
            release=release,
            port=port,
            broken=environ.get("APP_BROKEN", "0").strip() == "1",
        )
