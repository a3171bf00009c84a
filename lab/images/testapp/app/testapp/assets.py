"""Fingerprinted assets, the way ``rails assets:precompile`` (Propshaft) lays them out.

``precompile`` renders each source in ``assets/`` for a release, names it ``<stem>-<digest>.<ext>`` where the
digest is the start of the sha256 of the rendered content, and writes ``public/assets/.manifest.json``
mapping logical names (``application.css``) to fingerprinted ones.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

DIGEST_LENGTH = 32  # hex characters of the sha256 kept in the file name
MANIFEST_NAME = ".manifest.json"
ASSET_SUFFIXES = (".css", ".js")
RELEASE_PLACEHOLDER = "{{release}}"


def content_digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:DIGEST_LENGTH]


def fingerprinted_name(logical: str, content: bytes) -> str:
    """``application.css`` + content -> ``application-<sha256 prefix>.css``."""
    stem, dot, ext = logical.rpartition(".")
    if not dot:
        stem, ext = logical, ""
    return f"{stem}-{content_digest(content)}" + (f".{ext}" if ext else "")


def render(source: str, release: str) -> bytes:
    return source.replace(RELEASE_PLACEHOLDER, release).encode("utf-8")


def precompile(source_dir: Path, output_dir: Path, release: str) -> dict[str, str]:
    """Write the fingerprinted assets and the manifest; returns the manifest (logical -> file name)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, str] = {}
    for source in sorted(source_dir.iterdir()):
        if not source.is_file() or source.suffix not in ASSET_SUFFIXES:
            continue
        content = render(source.read_text(encoding="utf-8"), release)
        name = fingerprinted_name(source.name, content)
        (output_dir / name).write_bytes(content)
        manifest[source.name] = name
    (output_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def load_manifest(output_dir: Path) -> dict[str, str]:
    """The manifest written by ``precompile``, or an empty one when the assets were not precompiled."""
    try:
        data = json.loads((output_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def asset_url(manifest: dict[str, str], logical: str, asset_host: str = "") -> str:
    """URL of an asset as a page references it: on ``ASSET_HOST`` when set, else on the app itself.

    Like Rails, a host without a scheme (``cdn.example.com``) becomes protocol-relative.
    """
    path = f"/assets/{manifest.get(logical, logical)}"
    host = asset_host.strip().rstrip("/")
    if not host:
        return path
    if "://" not in host and not host.startswith("//"):
        host = "//" + host
    return host + path
