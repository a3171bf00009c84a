"""_settings.problems: what the settings check reports - each problem naming its setting, the unset required settings
alone when there are any, the rules between settings - and a value of the wrong type reported, never raising."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.railsdeploy.aws.plugins.plugin_utils._settings import (
    REQUIRED,
    cidr_problems,
    problems,
    pull_images_problems,
)

REPO = Path(__file__).resolve().parents[4]
ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
CDN_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"


def _defaults() -> dict:
    """The role's defaults that are plain values (templated ones are given rendered in GOOD)."""
    defaults = yaml.safe_load((REPO / "roles" / "settings" / "defaults" / "main.yml").read_text())
    return {k: v for k, v in defaults.items() if not (isinstance(v, str) and "{{" in v)}


GOOD = {
    **_defaults(),
    "railsdeploy_project": "shop", "railsdeploy_environment": "production", "railsdeploy_name": "shop-production",
    "railsdeploy_lb_name": "shop-production", "railsdeploy_region": "eu-west-1",
    "railsdeploy_domain": "shop.example.com",
    "railsdeploy_hosted_zone_id": "Z0123456789ABCDEFGHIJ", "railsdeploy_vpc_id": "vpc-0123456789abcdef0",
    "railsdeploy_subnets": {"eu-west-1a": "subnet-0123456789abcdef0", "eu-west-1b": "subnet-0fedcba9876543210"},
    "railsdeploy_ami_id": "ami-0123456789abcdef0", "railsdeploy_key_name": "shop-admins",
    "railsdeploy_admin_cidrs": ["203.0.113.0/24"], "railsdeploy_assets_bucket": "shop-production-assets",
    "railsdeploy_backup_bucket": "shop-production-backups", "railsdeploy_lb_certificate_arn": ARN,
    "railsdeploy_postgres_standby_node": "postgres2002", "railsdeploy_witness_node": "witness2001",
    "railsdeploy_pull_images": {"rails": ["registry.example.com/shop"], "postgres": ["postgres:15"], "witness": []},
}
THREE_ZONES = {"eu-west-1a": "subnet-0123456789abcdef0", "eu-west-1b": "subnet-0fedcba9876543210",
               "eu-west-1c": "subnet-00112233445566778"}


def _problems(**changes) -> list[tuple[str, str]]:
    return problems({**GOOD, **{"railsdeploy_" + k: v for k, v in changes.items()}})


def test_good_settings_have_no_problem():
    assert _problems() == []


def test_the_unset_required_settings_are_reported_alone():
    found = _problems(domain=None, admin_cidrs=[], region="europe")
    assert found == [("railsdeploy_domain", "is not set; it is required"),
                     ("railsdeploy_admin_cidrs", "is not set; it is required")]


def test_every_required_setting_is_one_the_role_requires():
    specs = yaml.safe_load((REPO / "roles" / "settings" / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["check"]["options"]
    assert {name for name, option in options.items() if option.get("required")} == set(REQUIRED)


def test_every_problem_is_reported_at_once_in_the_order_checked():
    found = _problems(region="europe", rails_count=-1, backup_bucket="shop-production-assets")
    assert [name for name, _ in found] == ["railsdeploy_region", "railsdeploy_subnets", "railsdeploy_rails_count",
                                           "railsdeploy_lb_certificate_arn", "railsdeploy_backup_bucket"]
    assert ("railsdeploy_region", "'europe' is not an AWS region (like us-west-2)") in found
    assert ("railsdeploy_rails_count", "-1 is not a number of rails nodes (0-100)") in found


@pytest.mark.parametrize(("changes", "setting", "words"), [
    ({"lb_name": "staging-europe-west-customers-shop"}, "railsdeploy_lb_name",
     "(34 characters) cannot name the load balancer"),
    ({"subnets": {"eu-west-1a": "sub-1"}}, "railsdeploy_subnets", "sub-1 not subnet ids"),
    ({"admin_cidrs": ["203.0.113.7"]}, "railsdeploy_admin_cidrs", "not CIDRs: 203.0.113.7"),
    ({"admin_cidrs": "203.0.113.0/24,198.51.100.7"}, "railsdeploy_admin_cidrs", "not CIDRs: 198.51.100.7"),
    ({"postgres_node": "rails2001"}, "railsdeploy_postgres_node",
     "must be a host name that no rails or worker node has"),
    ({"postgres_node": "worker2001", "worker_count": 1}, "railsdeploy_postgres_node",
     "must be a host name that no rails or worker node has"),
    ({"worker_count": 2, "worker_name_prefix": "rails", "worker_name_start": 2002}, "railsdeploy_worker_name_prefix",
     "names worker nodes as rails nodes are named (rails2002): give them a prefix of their own"),
    ({"worker_count": 101}, "railsdeploy_worker_count", "101 is not a number of worker nodes (0-100)"),
    ({"worker_instance_type": "small"}, "railsdeploy_worker_instance_type", "'small' is not an EC2 instance type"),
    ({"postgres_standby_count": 1}, "railsdeploy_postgres_standby_count", "lists 2 (eu-west-1a, eu-west-1b)"),
    ({"postgres_standby_count": 1, "subnets": THREE_ZONES, "postgres_standby_node": "witness2001"},
     "railsdeploy_postgres_standby_node", "must be a host name of its own"),
    ({"postgres_synchronous_strict": True}, "railsdeploy_postgres_synchronous_strict",
     "railsdeploy_postgres_standby_count is 0 (no standby)"),
    ({"postgres_synchronous_strict": "yes", "postgres_synchronous": "no", "postgres_standby_count": 1,
      "subnets": THREE_ZONES}, "railsdeploy_postgres_synchronous_strict", "railsdeploy_postgres_synchronous is false"),
    ({"postgres_mount_path": "/mnt"}, "railsdeploy_postgres_mount_path", "an absolute path of its own"),
    ({"postgres_user": "postgres"}, "railsdeploy_postgres_user", "postgres is the cluster's superuser"),
    ({"lb_certificate_arn": ""}, "railsdeploy_lb_certificate_arn", "set railsdeploy_allow_plain_http: true"),
    ({"lb_certificate_arn": ARN.replace("eu-west-1", "us-east-1")}, "railsdeploy_lb_certificate_arn",
     "is not the ARN of an ACM certificate in eu-west-1"),
    ({"cdn_domain": "www.shop.example.com", "cdn_certificate_arn": CDN_ARN}, "railsdeploy_cdn_domain",
     "is not a name of its own below shop.example.com"),
    ({"cdn_certificate_arn": CDN_ARN}, "railsdeploy_cdn_certificate_arn", "but railsdeploy_cdn_domain is not"),
    ({"cdn_domain": "assets.shop.example.com"}, "railsdeploy_cdn_certificate_arn",
     "is empty, but railsdeploy_cdn_domain is set (assets.shop.example.com)"),
    ({"cdn_domain": "assets.shop.example.com", "cdn_certificate_arn": ARN}, "railsdeploy_cdn_certificate_arn",
     "the only region whose certificates CloudFront uses"),
    ({"backup_bucket": "shop-production-assets"}, "railsdeploy_backup_bucket", "(like shop-production-backups)"),
    ({"postgres_backup_schedule": {"minute": "17", "day": "1"}}, "railsdeploy_postgres_backup_schedule",
     "is not a schedule"),
    ({"postgres_backup_schedule": {"minute": "17; rm"}}, "railsdeploy_postgres_backup_schedule", "is not a schedule"),
    ({"assets_prefix": "/assets/"}, "railsdeploy_assets_prefix", "must be a key prefix"),
    ({"postgres_archive_timeout": 86400}, "railsdeploy_postgres_archive_timeout", "outside 10-3600"),
])
def test_a_broken_rule_names_its_setting_and_the_fix(changes, setting, words):
    found = _problems(**changes)
    assert [m for name, m in found if name == setting and words in m], found


@pytest.mark.parametrize(("changes", "setting"), [
    ({"lb_health_check_interval": "soon"}, "railsdeploy_lb_health_check_interval"),
    ({"postgres_volume_size_gib": None}, "railsdeploy_postgres_volume_size_gib"),
    ({"project": 12}, "railsdeploy_project"),
    ({"subnets": ["eu-west-1a"]}, "railsdeploy_subnets"),
    ({"postgres_backup_schedule": "daily"}, "railsdeploy_postgres_backup_schedule"),
])
def test_a_value_of_the_wrong_type_is_reported_not_raised(changes, setting):
    assert setting in {name for name, _ in _problems(**changes)}


def test_a_standby_with_three_zones_and_names_of_its_own_passes():
    assert _problems(postgres_standby_count=1, subnets=THREE_ZONES, postgres_synchronous_strict=True) == []


def test_cidrs_with_host_bits_name_their_network_and_wide_ones_their_size():
    host_bits, wide = cidr_problems(["203.0.113.7/24", "198.51.100.0/2", "10.0.0.0/16", "not a cidr"])
    assert host_bits == [{"cidr": "203.0.113.7/24", "network": "203.0.113.0/24"},
                         {"cidr": "198.51.100.0/2", "network": "192.0.0.0/2"}]
    assert wide == [{"cidr": "198.51.100.0/2", "addresses": 2 ** 30}]


def test_the_whole_internet_is_refused_unless_allowed():
    [(name, message)] = _problems(admin_cidrs=["0.0.0.0/0"])
    assert name == "railsdeploy_admin_cidrs" and "open SSH to 4294967296 addresses" in message
    assert _problems(admin_cidrs=["0.0.0.0/0"], allow_ssh_from_anywhere=True) == []


def test_pull_images_problems_name_the_tier():
    assert pull_images_problems(["postgres:15"]) == ["not a mapping of tier => images"]
    assert pull_images_problems({"db": [], "rails": "shop:1", "postgres": ["postgres:15", "Bad Image"]}) == [
        "'db' is no tier (rails, worker, postgres, witness)", "rails: not a list",
        "postgres: image_reference: 'Bad Image' has an invalid repository name 'Bad Image' (lowercase letters, digits"
        " and separators)"]
