"""postgres_identifier: the names the app's role and database may have (the settings and postgres_primary check both
against this one definition)."""

from __future__ import annotations

import pytest

from ansible_collections.railsdeploy.aws.plugins.test import postgres_identifier as plugin

postgres_identifier = plugin.postgres_identifier


@pytest.mark.parametrize("value", ["rails", "rails_production", "_app", "a" * 63, "app2"])
def test_a_plain_identifier_is_one(value):
    assert postgres_identifier(value) is True


@pytest.mark.parametrize("value", ["Rails", "2app", "a" * 64, "rails-production", "app;drop", "app\n", "", None, 1])
def test_what_would_need_quoting_is_none(value):
    assert postgres_identifier(value) is False


def test_the_plugin_registers_the_test():
    assert plugin.TestModule().tests() == {"postgres_identifier": postgres_identifier}
