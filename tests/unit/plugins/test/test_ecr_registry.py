"""ecr_registry: an ECR registry host, and nothing else - the same pattern the image_reference filter reads as ECR."""

from __future__ import annotations

import pytest

from ansible_collections.railsdeploy.aws.plugins.filter.image_reference import image_reference
from ansible_collections.railsdeploy.aws.plugins.test import ecr_registry as plugin

ecr_registry = plugin.ecr_registry

ECR_HOSTS = [
    "123456789012.dkr.ecr.us-west-2.amazonaws.com",
    "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
    "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
]
NOT_ECR = [
    "https://123456789012.dkr.ecr.us-west-2.amazonaws.com",  # a scheme
    "123456789012.dkr.ecr.us-west-2.amazonaws.com/shop",  # a path
    "123456789012.dkr.ecr.us-west-2.amazonaws.com:443",  # a port
    "12345678901.dkr.ecr.us-west-2.amazonaws.com",  # 11 digits
    "123456789012.dkr.ecr.us-west-2.amazonaws.com.evil.example",
    "registry.example.com",
    "10.213.0.250:5000",
    "",
    None,
    ["123456789012.dkr.ecr.us-west-2.amazonaws.com"],
]


@pytest.mark.parametrize("host", ECR_HOSTS)
def test_an_ecr_host_is_one_and_the_filter_reads_it_as_ecr(host):
    assert ecr_registry(host)
    assert image_reference(f"{host}/shop:1")["ecr"]["account"] == "123456789012"


@pytest.mark.parametrize("value", NOT_ECR)
def test_anything_else_is_not(value):
    assert not ecr_registry(value)


def test_the_plugin_offers_the_test_under_its_name():
    assert plugin.TestModule().tests() == {"ecr_registry": ecr_registry}
