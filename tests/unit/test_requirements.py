"""What the venv installs is pinned by hash: requirements.txt pins exactly requirements.in's versions, each with the
hashes of its distributions (make setup installs it with --require-hashes), and uv itself is pinned the same way."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s\\;]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(path: Path) -> dict[str, dict]:
    """Each pinned requirement of a requirements file: version and hashes (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    found = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        match = PIN.match(line)
        if match:
            found[canonical(match.group(1))] = {"version": match.group(3),
                                                "hashes": re.findall(r"--hash=sha256:([0-9a-f]{64})", line)}
    return found


@pytest.mark.parametrize("locked", ["requirements.txt", "requirements-uv.txt"])
def test_every_pinned_distribution_carries_its_hashes(locked):
    pins = requirements(REPO / locked)
    assert pins, f"{locked} pins nothing"
    unhashed = sorted(name for name, pin in pins.items() if not pin["hashes"])
    assert not unhashed, f"{locked}: no --hash for {unhashed}: regenerate it (see requirements.in)"


def test_the_hashed_lock_pins_exactly_the_versions_of_requirements_in():
    wanted = {name: pin["version"] for name, pin in requirements(REPO / "requirements.in").items()}
    locked = {name: pin["version"] for name, pin in requirements(REPO / "requirements.txt").items()}
    assert locked == wanted, (
        "requirements.txt differs from requirements.in: "
        f"{sorted(set(locked.items()) ^ set(wanted.items()))}; regenerate it (see requirements.in's header)")


def test_make_setup_requires_the_hashes():
    makefile = (REPO / "Makefile").read_text()
    assert "--require-hashes -r requirements.txt" in makefile
    assert "--require-hashes -r requirements-uv.txt" in makefile
