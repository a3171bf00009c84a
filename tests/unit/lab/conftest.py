"""What the lab-service tests share: a lab service started as ``labctl`` starts it, in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from labkit import config


@pytest.fixture
def service_process(tmp_path: Path) -> Callable[[str], subprocess.Popen]:
    """start(code): run ``python -c code`` with labkit importable and the lab state in tmp_path (output piped)."""
    env = {**os.environ, "PYTHONPATH": str(config.LAB_DIR), "RAILSDEPLOY_LAB_STATE": str(tmp_path)}

    def start(code: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    return start
