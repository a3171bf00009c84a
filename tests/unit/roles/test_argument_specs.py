"""Every role's meta/argument_specs.yml tells the truth about its defaults/main.yml.

An option marked ``required`` must not also have a default: Ansible's argument validation runs before the
role's tasks, and a default (even an empty string) makes "required" a check that can never fire, so a role
used without the value runs on with an empty one. And every default is a documented option of some entry
point, so that `ansible-doc -t role` lists what a user can set.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"
ROLE_DIRS = sorted(p for p in ROLES.iterdir() if (p / "tasks").is_dir())


def _specs(role: Path) -> dict:
    return yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


def _defaults(role: Path) -> dict:
    path = role / "defaults" / "main.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_every_role_has_argument_specs(role: Path):
    assert (role / "meta" / "argument_specs.yml").is_file(), f"{role.name} has no meta/argument_specs.yml"


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_a_required_option_has_no_default(role: Path):
    defaults = _defaults(role)
    wrong = [
        f"{entry}: {name}"
        for entry, spec in _specs(role).items()
        for name, option in (spec.get("options") or {}).items()
        if option.get("required") and (name in defaults or "default" in option)
    ]
    assert not wrong, (
        f"{role.name}: required options that also have a default, so the requirement never fires: {wrong}")


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_every_default_is_a_documented_option(role: Path):
    declared = {name for spec in _specs(role).values() for name in (spec.get("options") or {})}
    undeclared = sorted(set(_defaults(role)) - declared)
    assert not undeclared, f"{role.name}: defaults that no entry point of argument_specs.yml declares: {undeclared}"
