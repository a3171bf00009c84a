"""Bad settings stop provision.yml before any AWS call, with a message naming the variable."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
# provision.yml's first task that calls AWS (after every check of the settings).
FIRST_AWS_TASK = "This environment's nodes are known"
INVENTORY = Path(__file__).with_name("inventory.yml")

# (case id, extra vars as JSON, variable the message must name, words the message must contain)
CASES = [
    ("no-domain", {"railsdeploy_domain": None}, "railsdeploy_domain", "is not set; it is required"),
    ("domain-with-space", {"railsdeploy_domain": "shop example.com"}, "railsdeploy_domain", "not a domain name"),
    ("unknown-az",
     {"railsdeploy_subnets": {"eu-west-1a": "subnet-0123456789abcdef0", "us-east-1b": "subnet-0fedcba9876543210"}},
     "railsdeploy_subnets", "us-east-1b are not zones of region eu-west-1"),
    ("negative-count", {"railsdeploy_rails_count": -1}, "railsdeploy_rails_count", "not a number of rails nodes"),
    ("count-not-a-number", {"railsdeploy_rails_count": "two"}, "railsdeploy_rails_count", "int"),
    ("malformed-ami", {"railsdeploy_ami_id": "ami-XYZ"}, "railsdeploy_ami_id", "not an AMI id"),
    ("ssh-from-anywhere", {"railsdeploy_admin_cidrs": ["0.0.0.0/0"]}, "railsdeploy_admin_cidrs",
     "railsdeploy_allow_ssh_from_anywhere"),
    ("cidr-without-prefix", {"railsdeploy_admin_cidrs": ["203.0.113.7"]}, "railsdeploy_admin_cidrs",
     "not CIDRs: 203.0.113.7"),
    ("ssh-from-half-the-internet", {"railsdeploy_admin_cidrs": ["0.0.0.0/1"]}, "railsdeploy_admin_cidrs",
     "0.0.0.0/1 open SSH to 2147483648 addresses"),
    ("cidr-prefix-typo", {"railsdeploy_admin_cidrs": ["203.0.113.0/24", "198.51.100.0/2"]}, "railsdeploy_admin_cidrs",
     "198.51.100.0/2 has host bits set (its network is 192.0.0.0/2"),
    ("load-balancer-name-cut-to-32", {"railsdeploy_environment": "staging-europe-west-customers"},
     "railsdeploy_lb_name", "(34 characters) cannot name the load balancer"),
    ("cidr-with-host-bits", {"railsdeploy_admin_cidrs": ["203.0.113.7/24"]}, "railsdeploy_admin_cidrs",
     "203.0.113.7/24 has host bits set (its network is 203.0.113.0/24"),
    ("no-admin-cidr", {"railsdeploy_admin_cidrs": []}, "railsdeploy_admin_cidrs", "is not set; it is required"),
    ("malformed-region", {"railsdeploy_region": "europe"}, "railsdeploy_region", "not an AWS region"),
    ("malformed-vpc", {"railsdeploy_vpc_id": "vpc-123"}, "railsdeploy_vpc_id", "not a VPC id"),
    ("malformed-subnet", {"railsdeploy_subnets": {"eu-west-1a": "sub-1"}}, "railsdeploy_subnets", "not subnet ids"),
    ("hosted-zone-with-path", {"railsdeploy_hosted_zone_id": "/hostedzone/Z0123456789ABCDEFGHIJ"},
     "railsdeploy_hosted_zone_id", "without /hostedzone/"),
    ("volume-size-zero", {"railsdeploy_postgres_volume_size_gib": 0}, "railsdeploy_postgres_volume_size_gib",
     "not an EBS volume size"),
    ("unknown-volume-type", {"railsdeploy_postgres_volume_type": "st1"}, "railsdeploy_postgres_volume_type", "st1"),
    ("primary-named-like-rails-node", {"railsdeploy_postgres_node": "rails2002"}, "railsdeploy_postgres_node",
     "no rails or worker node has"),
    ("bad-instance-type", {"railsdeploy_rails_instance_type": "large"}, "railsdeploy_rails_instance_type",
     "not an EC2 instance type"),
    ("bad-bucket", {"railsdeploy_assets_bucket": "Shop_Assets"}, "railsdeploy_assets_bucket", "not an S3 bucket name"),
    ("health-interval-too-short", {"railsdeploy_lb_health_check_interval": 1}, "railsdeploy_lb_health_check_interval",
     "outside 5-300"),
    ("no-key-pair", {"railsdeploy_key_name": ""}, "railsdeploy_key_name", "is not set; it is required"),
    ("backups-in-the-asset-bucket", {"railsdeploy_backup_bucket": "shop-production-assets"},
     "railsdeploy_backup_bucket", "backups need a bucket of their own"),
    ("archive-timeout-of-a-day", {"railsdeploy_postgres_archive_timeout": 86400},
     "railsdeploy_postgres_archive_timeout", "outside 10-3600"),
    ("no-certificate", {"railsdeploy_lb_certificate_arn": ""}, "railsdeploy_lb_certificate_arn",
     "would serve the site over plain HTTP only"),
    ("certificate-of-another-region",
     {"railsdeploy_lb_certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d"},
     "railsdeploy_lb_certificate_arn", "is not the ARN of an ACM certificate in eu-west-1"),
    ("misspelt-certificate-setting",
     {"railsdeploy_lb_certficate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/x"},
     "railsdeploy_lb_certficate_arn", "(did you mean railsdeploy_lb_certificate_arn?)"),
    ("misspelt-role-setting", {"rails_app_keep_releses": 3}, "rails_app_keep_releses",
     "(did you mean rails_app_keep_releases?)"),
    ("pull-image-not-a-reference",
     {"railsdeploy_pull_images": {"rails": ["123456789012.dkr.ecr.eu-west-1.amazonaws.com/Shop"], "postgres": []}},
     "railsdeploy_pull_images", "rails: image_reference: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/Shop' has an "
     "invalid repository name 'Shop'"),
    ("etcd-image-not-a-reference", {"railsdeploy_etcd_image": "Registry.example/etcd 3.4"}, "railsdeploy_etcd_image",
     "'Registry.example/etcd 3.4' is not an image reference"),
    ("pull-images-of-an-unknown-tier", {"railsdeploy_pull_images": {"workers": ["acme/shop"]}},
     "railsdeploy_pull_images", "'workers' is no tier (rails, worker, postgres, witness)"),
    ("cdn-domain-without-certificate", {"railsdeploy_cdn_domain": "assets.shop.example.com"},
     "railsdeploy_cdn_certificate_arn", "CloudFront serves a name of your own only with an ACM certificate"),
    ("cdn-certificate-of-another-region",
     {"railsdeploy_cdn_domain": "assets.shop.example.com",
      "railsdeploy_cdn_certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d"},
     "railsdeploy_cdn_certificate_arn", "is not the ARN of an ACM certificate in us-east-1"),
    ("cdn-domain-outside-the-site",
     {"railsdeploy_cdn_domain": "assets.elsewhere.example",
      "railsdeploy_cdn_certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/a"},
     "railsdeploy_cdn_domain", "is not a name of its own below shop.example.com"),
    ("backup-schedule-in-words", {"railsdeploy_postgres_backup_schedule": {"hour": "3am"}},
     "railsdeploy_postgres_backup_schedule", "is not a schedule"),
    ("two-standbys", {"railsdeploy_postgres_standby_count": 2}, "railsdeploy_postgres_standby_count",
     "2 is not 0 (a single PostgreSQL node) or 1 (a standby in another availability zone)"),
    ("a-standby-with-two-zones", {"railsdeploy_postgres_standby_count": 1}, "railsdeploy_postgres_standby_count",
     "railsdeploy_subnets lists 2 (eu-west-1a, eu-west-1b): add a subnet in a third zone"),
    ("standby-named-like-the-primary",
     {"railsdeploy_postgres_standby_count": 1, "railsdeploy_postgres_standby_node": "postgres2001"},
     "railsdeploy_postgres_standby_node", "'postgres2001' must be a host name of its own"),
    ("witness-named-like-a-rails-node",
     {"railsdeploy_postgres_standby_count": 1, "railsdeploy_witness_node": "rails2001"},
     "railsdeploy_witness_node", "'rails2001' must be a host name of its own"),
    ("strict-synchronous-without-a-standby", {"railsdeploy_postgres_synchronous_strict": True},
     "railsdeploy_postgres_synchronous_strict", "true would block every commit"),
    ("witness-instance-type", {"railsdeploy_witness_instance_type": "micro"}, "railsdeploy_witness_instance_type",
     "not an EC2 instance type"),
]


def run_provision(extra: dict) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    cmd = ["ansible-playbook", "-i", str(INVENTORY), "playbooks/provision.yml", "-e", json.dumps(extra)]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("extra", "variable", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_setting_stops_before_any_aws_call(extra, variable, words):
    proc = run_provision(extra)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert variable in out, out[-3000:]
    assert words in out, out[-3000:]
    # Nothing got as far as AWS: provision.yml's first AWS call did not run.
    assert FIRST_AWS_TASK not in out, out[-3000:]
    assert "Connection refused" not in out and "Could not connect to the endpoint" not in out, out[-3000:]


def test_valid_settings_pass_validation_and_reach_aws():
    """The control case: with the settings intact, validation passes and the first AWS call is made
    (and fails, since nothing listens on the endpoint)."""
    proc = run_provision({})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"TASK [{FIRST_AWS_TASK}]" in out, out[-3000:]
    assert "Could not connect to the endpoint" in out or "Connection refused" in out, out[-3000:]
