"""Valid settings of a production-like environment ("shop", production, us-west-2) for the integration tests that
run playbooks outside the lab; a test adds or overrides what it is about (its buckets, its registry)."""

from __future__ import annotations

SHOP: dict = {
    "railsdeploy_project": "shop",
    "railsdeploy_environment": "production",
    "railsdeploy_region": "us-west-2",
    "railsdeploy_domain": "shop.example.com",
    "railsdeploy_hosted_zone_id": "Z0123456789ABCDEFGHIJ",
    "railsdeploy_vpc_id": "vpc-0123456789abcdef0",
    "railsdeploy_subnets": {"us-west-2a": "subnet-0123456789abcdef0"},
    "railsdeploy_ami_id": "ami-0123456789abcdef0",
    "railsdeploy_key_name": "shop-admins",
    "railsdeploy_admin_cidrs": ["203.0.113.0/24"],
    "railsdeploy_assets_bucket": "shop-production-assets",
    "railsdeploy_backup_bucket": "shop-production-backups",
    "railsdeploy_lb_certificate_arn": "arn:aws:acm:us-west-2:123456789012:certificate/0a1b2c3d",
}
