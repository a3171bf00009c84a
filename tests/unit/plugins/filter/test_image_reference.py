"""image_reference: an image reference taken apart as Docker reads it, and ECR's account, region and repository ARN."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.railsdeploy.aws.plugins.filter.image_reference import FilterModule, image_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("ref", "registry", "repository", "tag", "digest"), [
    ("postgres:15", "docker.io", "library/postgres", "15", ""),
    ("acme/shop", "docker.io", "acme/shop", "", ""),
    ("registry.example.com/shop", "registry.example.com", "shop", "", ""),
    ("10.213.0.250:5000/testapp:1", "10.213.0.250:5000", "testapp", "1", ""),
    ("localhost/team/shop:v2", "localhost", "team/shop", "v2", ""),
    (f"postgres:15@{DIGEST}", "docker.io", "library/postgres", "15", DIGEST),
    (f"registry.example.com:443/a/b@{DIGEST}", "registry.example.com:443", "a/b", "", DIGEST),
])
def test_the_parts_are_those_docker_reads(ref, registry, repository, tag, digest):
    assert image_reference(ref) == {"registry": registry, "repository": repository, "tag": tag, "digest": digest,
                                    "ecr": {}}


def test_an_ecr_registry_gives_the_account_region_and_the_repository_arn_iam_names():
    got = image_reference("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/shop:v1")
    assert got["registry"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert got["ecr"] == {"account": "123456789012", "region": "eu-west-1",
                          "repository_arn": "arn:aws:ecr:eu-west-1:123456789012:repository/team/shop"}


def test_fips_and_china_ecr_endpoints_are_ecr_too():
    assert image_reference("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/shop")["ecr"]["region"] == "us-east-1"
    cn = image_reference("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/shop")["ecr"]
    assert cn["repository_arn"] == "arn:aws-cn:ecr:cn-north-1:123456789012:repository/shop"


@pytest.mark.parametrize("ref", ["ecr.amazonaws.com/shop", "12345678901.dkr.ecr.eu-west-1.amazonaws.com/shop",
                                 "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example/shop"])
def test_look_alikes_are_not_ecr(ref):
    assert image_reference(ref)["ecr"] == {}


@pytest.mark.parametrize(("ref", "words"), [
    ("", "not an image reference"),
    ("Shop:v1", "invalid repository name"),
    ("shop:-v1", "invalid tag"),
    ("shop@sha256:xyz", "no valid digest"),
])
def test_a_bad_reference_is_refused_naming_what_is_wrong(ref, words):
    with pytest.raises(AnsibleFilterError, match=words):
        image_reference(ref)


def test_a_bad_reference_can_be_returned_for_a_settings_check_to_name():
    assert image_reference("Shop:v1", errors="return") == {
        "error": "image_reference: 'Shop:v1' has an invalid repository name 'Shop' "
                 "(lowercase letters, digits and separators)"}
    assert image_reference("shop:v1", errors="return")["repository"] == "library/shop"


def test_the_filter_is_registered():
    assert FilterModule().filters()["image_reference"] is image_reference
