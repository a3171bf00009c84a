"""Values two roles must agree on come from one setting of the settings role: overriding it reaches both, and
neither role's own default can drift from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLES = Path(__file__).resolve().parents[3] / "roles"


def _defaults(role: str) -> dict:
    return yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())


def _rendered(role: str, name: str, settings: dict) -> str:
    templar = Templar(loader=DataLoader(), variables=settings)
    return templar.template(trust_as_template(_defaults(role)[name]))


# (role, its variable) pairs that read railsdeploy_retained_releases_file: the deploy writes the list, the daily
# clean-up keeps what it lists - if they disagreed, the clean-up would delete the rollback images.
RETAINED = [("rails_app", "rails_app_retained_file"), ("docker_gc", "docker_gc_retained_file")]


@pytest.mark.parametrize(("role", "name"), RETAINED)
def test_the_retained_releases_file_follows_the_one_setting(role: str, name: str):
    assert _rendered(role, name, {"railsdeploy_retained_releases_file": "/srv/kept/list"}) == "/srv/kept/list"


@pytest.mark.parametrize(("role", "name"), RETAINED)
def test_without_the_setting_each_role_defaults_to_the_settings_default(role: str, name: str):
    assert _rendered(role, name, {}) == _defaults("settings")["railsdeploy_retained_releases_file"]
