"""The action railsdeploy.aws.settings_check: a setting no check reads is never rendered (the database password's
lookup does not run), the names given are every host's, and the unknown names are reported with the one meant."""

from __future__ import annotations

from ansible_collections.railsdeploy.aws.plugins.action.settings_check import (
    ROLES,
    Rendered,
    given_names,
    unknown_message,
)
from ansible_collections.railsdeploy.aws.plugins.plugin_utils._settings import problems


class RecordingTemplar:
    def __init__(self):
        self.rendered = []

    def template(self, value):
        self.rendered.append(value)
        return value.replace("{{ x }}", "1") if isinstance(value, str) else value


def test_only_what_a_check_reads_is_rendered():
    templar = RecordingTemplar()
    variables = {"railsdeploy_postgres_password": "{{ lookup('aws_ssm', 'db') }}", "railsdeploy_rails_count": "{{ x }}"}
    rendered = Rendered(templar, variables)
    problems(rendered)
    assert "{{ lookup('aws_ssm', 'db') }}" not in templar.rendered
    assert rendered["railsdeploy_rails_count"] == "1"
    assert templar.rendered.count("{{ x }}") == 1, "a value is rendered once, however often it is read"


def test_a_missing_setting_reads_as_unset():
    assert Rendered(RecordingTemplar(), {}).get("railsdeploy_domain") is None


class FakeHostVars:
    def __init__(self, by_host):
        self.by_host = by_host

    def raw_get(self, host):
        return self.by_host[host]


def test_the_names_given_are_every_hosts_and_localhosts():
    task_vars = {"groups": {"all": ["rails2001", "postgres2001"]},
                 "hostvars": FakeHostVars({"rails2001": {"a": 1, "railsdeploy_x": 2}, "postgres2001": {"b": 1},
                                           "localhost": {"railsdeploy_y": 1}})}
    assert given_names(task_vars) == {"a", "b", "railsdeploy_x", "railsdeploy_y"}


def test_the_unknown_names_are_listed_with_the_setting_meant():
    message = unknown_message([
        {"name": "railsdeploy_lb_certficate_arn", "suggestion": "railsdeploy_lb_certificate_arn"},
        {"name": "railsdeploy_colour", "suggestion": ""},
    ])
    assert ("railsdeploy_lb_certficate_arn (did you mean railsdeploy_lb_certificate_arn?), railsdeploy_colour. "
            "Correct or remove them") in message


def test_the_roles_are_the_collections():
    assert (ROLES / "settings" / "meta" / "argument_specs.yml").is_file()
