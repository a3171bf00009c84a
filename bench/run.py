"""Runs every benchmark in bench/ against a lab it brings up (and takes down if it started it).

Each benchmark prints `name: value` lines; nothing here is asserted — the figures are for
people and for closing notes. A benchmark that fails does not stop the others (each prints its figures
as it measures them); the run exits non-zero naming the ones that failed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = ["provision.py", "deploy.py", "backup.py", "failover.py"]


def lab_is_up() -> bool:
    out = subprocess.run([sys.executable, "lab/labctl.py", "env"], cwd=REPO, capture_output=True, text=True)
    return bool(json.loads(out.stdout or "{}").get("endpoint_url"))


def main() -> int:
    started_lab = not lab_is_up()
    if started_lab:
        subprocess.run([sys.executable, "lab/labctl.py", "up"], cwd=REPO, check=True)
    failed = []
    try:
        for name in BENCHMARKS:
            proc = subprocess.run([sys.executable, str(REPO / "bench" / name)], cwd=REPO, check=False)
            if proc.returncode != 0:
                failed.append(name)
                print(f"# bench/{name} failed (rc {proc.returncode}); its figures above are still valid",
                      file=sys.stderr, flush=True)
    finally:
        if started_lab:
            subprocess.run([sys.executable, "lab/labctl.py", "down"], cwd=REPO, check=False)
    if failed:
        print(f"# failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
