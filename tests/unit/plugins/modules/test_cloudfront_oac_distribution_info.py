"""cloudfront_oac_distribution_info: the distribution of a caller reference found with the requests it sends to
CloudFront (botocore's Stubber; moto drops the OAC fields a distribution's origin has, see the sibling module's
tests), read-only, and what it returns when there is none."""

from __future__ import annotations

import pytest
from _cloudfront_stubs import CloudFrontStub, aws_reported_config, distribution_list, run_module, summary

from ansible_collections.railsdeploy.aws.plugins.module_utils._cloudfront_oac import (
    build_distribution_config,
    desired_settings,
)
from ansible_collections.railsdeploy.aws.plugins.modules import cloudfront_oac_distribution_info

REFERENCE = "railsdeploy-production-assets"
ARGS = {"caller_reference": REFERENCE, "origin_bucket": "railsdeploy-assets"}
READ_ONLY = {"ListDistributions", "GetDistributionConfig"}


def config(reference: str, bucket: str, aliases: list[str] | None = None) -> dict:
    settings = desired_settings(
        bucket=bucket, region="us-west-2", origin_path="production", origin_access_control_id="E2QWRUHEXAMPLE",
        comment="assets", price_class="PriceClass_100", http_version="http2and3", enabled=True, ipv6_enabled=True,
        cache_policy_id="658327ea-f89d-4fab-a63d-7e88639e58f6", viewer_protocol_policy="redirect-to-https",
        compress=True, aliases=aliases,
        acm_certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/abcd-1234" if aliases else None)
    return aws_reported_config(build_distribution_config(reference, settings))


@pytest.fixture
def run(monkeypatch, capsys):
    def _run(args, stub, **kwargs):
        return run_module(cloudfront_oac_distribution_info.main, args, stub, monkeypatch, capsys, **kwargs)

    return _run


def test_finds_the_distribution_reading_those_with_the_bucket_as_origin_first(run):
    ours = config(REFERENCE, "railsdeploy-assets", aliases=["assets.example.com"])
    other = config("someone-else", "other-bucket")
    stub = CloudFrontStub()
    # Listed after another distribution, but its origin is the bucket: its configuration is read first, and alone.
    stub.reply("list_distributions", distribution_list(summary("EOTHER000000", other), summary("E1A2B3C4D5E6F7", ours)))
    stub.reply("get_distribution_config", {"DistributionConfig": ours, "ETag": "ETAG1"})

    result = run(ARGS, stub)

    assert result["changed"] is False and result["exists"] is True, result
    assert result["id"] == "E1A2B3C4D5E6F7"
    assert result["arn"] == "arn:aws:cloudfront::123456789012:distribution/E1A2B3C4D5E6F7"
    assert result["domain_name"] == "e1a2b3c4d5e6f7.cloudfront.net"
    assert result["status"] == "Deployed"
    assert result["aliases"] == ["assets.example.com"]
    assert stub.operations() == ["ListDistributions", "GetDistributionConfig"]
    assert stub.sent("GetDistributionConfig") == {"Id": "E1A2B3C4D5E6F7"}


def test_none_found_returns_exists_false_and_empty_values(run):
    stub = CloudFrontStub()
    stub.reply("list_distributions", distribution_list(summary("EOTHER000000", config("someone-else", "other"))))
    stub.reply("get_distribution_config", {"DistributionConfig": config("someone-else", "other"), "ETag": "E"})

    result = run(ARGS, stub, check_mode=True)

    assert result["exists"] is False and result["changed"] is False, result
    assert (result["id"], result["arn"], result["domain_name"], result["status"], result["aliases"]) == (
        "", "", "", "", [])
    assert set(stub.operations()) <= READ_ONLY


def test_a_distribution_deleted_while_listed_is_skipped(run):
    ours = config(REFERENCE, "railsdeploy-assets")
    stub = CloudFrontStub()
    stub.reply("list_distributions", distribution_list(summary("EGONE0000000", ours), summary("E1A2B3C4D5E6F7", ours)))
    stub.error("get_distribution_config", "NoSuchDistribution", status=404)
    stub.reply("get_distribution_config", {"DistributionConfig": ours, "ETag": "ETAG1"})

    result = run(ARGS, stub)

    assert result["exists"] is True and result["id"] == "E1A2B3C4D5E6F7", result


def test_a_bad_caller_reference_is_refused_before_any_request(run):
    stub = CloudFrontStub()

    result = run({"caller_reference": "  "}, stub)

    assert result["failed"] is True
    assert "caller_reference must not be empty" in result["msg"]
    assert stub.operations() == []


def test_a_bad_bucket_name_is_refused_before_any_request(run):
    stub = CloudFrontStub()

    result = run({"caller_reference": REFERENCE, "origin_bucket": "Not_A_Bucket"}, stub)

    assert result["failed"] is True and "Not_A_Bucket" in result["msg"], result
    assert stub.operations() == []
