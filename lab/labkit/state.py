"""The lab's state file: where moto listens, the VPC and subnets it created, published ports."""

from __future__ import annotations

import json
import os
from typing import Any

from . import config


def load() -> dict[str, Any]:
    try:
        return json.loads(config.STATE_FILE.read_text())
    except FileNotFoundError:
        return {}


def save(data: dict[str, Any]) -> None:
    config.STATE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = config.STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, config.STATE_FILE)


def update(**values: Any) -> dict[str, Any]:
    data = load()
    data.update(values)
    save(data)
    return data
