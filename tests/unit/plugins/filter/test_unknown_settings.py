"""unknown_settings: the names that look like settings but are none, with the setting meant - against the argument
specs of this checkout's roles, as a playbook calls it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.railsdeploy.aws.plugins.filter.unknown_settings import (
    FilterModule,
    known_settings,
    unknown_settings,
)

REPO = Path(__file__).resolve().parents[4]
ROLES = REPO / "roles"


@pytest.mark.parametrize(("given", "meant"), [
    ("railsdeploy_lb_certficate_arn", "railsdeploy_lb_certificate_arn"),
    ("railsdeploy_rails_cuont", "railsdeploy_rails_count"),
    ("rails_app_keep_release", "rails_app_keep_releases"),
    ("postgres_primary_imgae", "postgres_primary_image"),
])
def test_a_misspelt_setting_is_reported_with_the_setting_meant(given, meant):
    assert unknown_settings([given, meant], ROLES) == [{"name": given, "suggestion": meant}]


def test_a_setting_like_no_other_is_reported_without_a_guess():
    assert unknown_settings(["railsdeploy_colour"], ROLES) == [{"name": "railsdeploy_colour", "suggestion": ""}]


def test_the_closest_setting_of_the_longest_prefix_is_suggested():
    # rails_ is no prefix, rails_app_ and rails_image_ are: a rails_image_ typo is not matched to a rails_app_ name.
    [found] = unknown_settings(["rails_image_dockerfil"], ROLES)
    assert found["suggestion"] == "rails_image_dockerfile"


@pytest.mark.parametrize(("given", "meant"), [
    ("docker_host_gc_enabled", "docker_gc_enabled"),
    ("docker_host_gc_retained_file", "docker_gc_retained_file"),
])
def test_a_setting_that_moved_to_another_role_is_reported_with_its_new_name(given, meant):
    assert unknown_settings([given], ROLES) == [{"name": given, "suggestion": meant}]


@pytest.mark.parametrize("name", [
    "ansible_host", "aws_endpoint_url", "instance_id", "lab", "postgres_host", "__railsdeploy_checks",
    "railsdeploy_postgres_password", "railsdeploy_admins", "rails_app_serial", "rails_app_release",
])
def test_known_settings_and_other_variables_pass(name):
    assert unknown_settings([name], ROLES) == []


@pytest.mark.parametrize("inventory", ["production", "lab"])
def test_every_setting_of_the_shipped_inventories_is_known(inventory):
    group_vars = REPO / "inventories" / inventory / "group_vars"
    names = [name for path in group_vars.rglob("*.yml") for name in (yaml.safe_load(path.read_text()) or {})]
    assert len(names) > 20
    assert unknown_settings(names, ROLES) == []


def test_the_known_settings_are_every_roles_options():
    known, prefixes = known_settings(ROLES)
    assert {"railsdeploy_", "rails_app_", "postgres_primary_", "admin_users_"} <= set(prefixes)
    assert {"railsdeploy_lb_certificate_arn", "rails_app_keep_releases", "admin_users_admins"} <= known


def test_a_directory_without_roles_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no role with meta/argument_specs.yml"):
        unknown_settings(["railsdeploy_x"], tmp_path)


def test_the_filter_is_registered_under_its_name():
    assert FilterModule().filters()["unknown_settings"] is unknown_settings
