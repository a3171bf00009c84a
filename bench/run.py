"""Runs every benchmark in bench/ against a lab it brings up (and takes down if it started it).

Each benchmark prints `name: value` lines; nothing here is asserted — the figures are for
people and for closing notes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = ["provision.py"]


def lab_is_up() -> bool:
    out = subprocess.run([sys.executable, "lab/labctl.py", "env"], cwd=REPO, capture_output=True, text=True)
    return bool(json.loads(out.stdout or "{}").get("endpoint_url"))


def main() -> int:
    started_lab = not lab_is_up()
    if started_lab:
        subprocess.run([sys.executable, "lab/labctl.py", "up"], cwd=REPO, check=True)
    try:
        for name in BENCHMARKS:
            subprocess.run([sys.executable, str(REPO / "bench" / name)], cwd=REPO, check=True)
    finally:
        if started_lab:
            subprocess.run([sys.executable, "lab/labctl.py", "down"], cwd=REPO, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
