"""image_tag: a Docker image tag - the one definition the deploy, the build and site.yml check releases against, and
the image_reference filter and the rails_release and app_workers modules read."""

from __future__ import annotations

import pytest

from ansible_collections.railsdeploy.aws.plugins.filter.image_reference import image_reference
from ansible_collections.railsdeploy.aws.plugins.module_utils._image_tag import release_errors
from ansible_collections.railsdeploy.aws.plugins.test import image_tag as plugin

image_tag = plugin.image_tag

TAGS = ["1", "v1.2.3", "2024-06-01.1", "rails2", "_x", "a" * 128, "abc123def"]
NOT_TAGS = [".hidden", "-dash", "a" * 129, "bad tag!", "has/slash", "colon:1", "1\n", "", None, 42, ["1"]]


@pytest.mark.parametrize("value", TAGS)
def test_a_tag_docker_accepts_is_one(value):
    assert image_tag(value) is True


@pytest.mark.parametrize("value", NOT_TAGS)
def test_anything_else_is_none(value):
    assert image_tag(value) is False


# (A tag with a slash or colon would be read as part of the repository or a port: not a question about the tag.)
READ_AS_TAGS = TAGS + [t for t in NOT_TAGS if isinstance(t, str) and t and "/" not in t and ":" not in t]


@pytest.mark.parametrize("value", READ_AS_TAGS)
def test_the_filter_reads_a_references_tag_the_same_way(value):
    parsed = image_reference(f"registry.example.com/shop:{value}", errors="return")
    assert ("error" not in parsed) is image_tag(value), parsed


def test_the_plugin_registers_the_test():
    assert plugin.TestModule().tests() == {"image_tag": image_tag}


@pytest.mark.parametrize("value", TAGS)
def test_a_modules_release_that_is_a_tag_has_no_error(value):
    assert release_errors(value) == []


@pytest.mark.parametrize("value", NOT_TAGS)
def test_a_modules_release_that_is_no_tag_is_named(value):
    assert release_errors(value) == [
        f"release {value!r} is not a valid image tag (letters, digits, _ . -; at most 128)"
    ]
