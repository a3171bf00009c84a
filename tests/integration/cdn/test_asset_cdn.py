"""The asset_cdn role end to end against a moto_server of its own: ansible-playbook runs the role, boto3 reads back.

What a user would notice: the bucket is private (Block Public Access, no ACLs, encrypted), its policy lets the
distribution and nobody else read the assets, a browser's ``/assets/<file>`` maps to the uploaded object, a
second run and a check-mode run change nothing, and ``absent`` removes it all.

moto 5.2.5 does not store a distribution origin's ``OriginAccessControlId``; the server is started through
``lab/moto_server.py``, which keeps it (see there). ``test_stock_moto_still_drops_the_oac`` notices when moto
fixes this and the launcher can go.

Run with ``.venv/bin/pytest tests/integration/cdn -v`` (no Docker, no lab: about a minute).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from lablib.playbooks import JsonRun

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
PLAYBOOK = HERE / "asset_cdn.yml"
INVENTORY = HERE.parent / "localhost.yml"
REGION = "us-west-2"
BUCKET = "itest-railsdeploy-assets"
PREFIX = "production/assets"
CALLER_REFERENCE = f"{BUCKET}-production"  # the role's default asset_cdn_name for this bucket and prefix


@pytest.fixture(scope="module")
def endpoint(moto_url: str) -> str:
    """This module's own moto_server (tests/integration/conftest.py)."""
    return moto_url


class Aws:
    def __init__(self, endpoint: str) -> None:
        kwargs = dict(
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="CDNTESTACCESSKEY0000",
            aws_secret_access_key="cdn-test-secret-key-not-a-real-one",
        )
        self.s3 = boto3.client("s3", **kwargs)
        self.cloudfront = boto3.client("cloudfront", **kwargs)

    def distributions(self, caller_reference: str) -> list[dict[str, Any]]:
        """Distributions with this caller reference: (summary, config) pairs."""
        found = []
        for summary in self.cloudfront.list_distributions()["DistributionList"].get("Items") or []:
            config = self.cloudfront.get_distribution_config(Id=summary["Id"])["DistributionConfig"]
            if config["CallerReference"] == caller_reference:
                found.append({**summary, "Config": config})
        return found

    def oacs(self, name: str) -> list[dict[str, Any]]:
        items = self.cloudfront.list_origin_access_controls()["OriginAccessControlList"].get("Items") or []
        return [item for item in items if item["Name"] == name]

    def buckets(self) -> list[str]:
        return [bucket["Name"] for bucket in self.s3.list_buckets()["Buckets"]]


@pytest.fixture(scope="module")
def aws(endpoint: str) -> Aws:
    return Aws(endpoint)


class Run(JsonRun):
    """A run of the test playbook, which prints the CDN facts the role returned."""

    @property
    def facts(self) -> dict[str, str]:
        return self.result("CDN facts are known")["msg"]


@pytest.fixture(scope="module")
def playbook(endpoint: str, ansible_playbook):
    def run(bucket: str = BUCKET, *args: str) -> Run:
        extra = ["-e", f"cdn_test_endpoint_url={endpoint}", "-e", f"cdn_test_bucket={bucket}", *args]
        return Run(ansible_playbook(INVENTORY, PLAYBOOK, *extra, timeout=600)).ok()

    return run


@pytest.fixture(scope="module")
def first_run(playbook) -> Run:
    return playbook()


def test_first_run_creates_the_cdn_and_returns_its_host(first_run, aws):
    assert first_run.changed >= 4, first_run.changed_tasks()
    (dist,) = aws.distributions(CALLER_REFERENCE)
    assert first_run.facts == {
        "domain_name": dist["DomainName"],
        "distribution_id": dist["Id"],
        "distribution_arn": dist["ARN"],
        "asset_host": f"https://{dist['DomainName']}",
    }


def test_bucket_is_private(first_run, aws):
    s3 = aws.s3
    assert s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}
    ]
    rules = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_policy_lets_only_the_distribution_read_the_assets_and_only_over_tls(first_run, aws):
    (dist,) = aws.distributions(CALLER_REFERENCE)
    policy = json.loads(aws.s3.get_bucket_policy(Bucket=BUCKET)["Policy"])

    assert policy["Statement"] == [
        {
            "Sid": "CloudFrontDistributionReadsAssets",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/{PREFIX}/*",
            "Condition": {"StringEquals": {"AWS:SourceArn": dist["ARN"]}},
        },
        {
            "Sid": "DenyRequestsWithoutTLS",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]


def test_distribution_reads_the_bucket_through_the_oac(first_run, aws):
    (dist,) = aws.distributions(CALLER_REFERENCE)
    (oac,) = aws.oacs(CALLER_REFERENCE)
    config = dist["Config"]

    (origin,) = config["Origins"]["Items"]
    assert origin["DomainName"] == f"{BUCKET}.s3.{REGION}.amazonaws.com"
    assert origin["OriginAccessControlId"] == oac["Id"]
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert (oac["SigningProtocol"], oac["SigningBehavior"], oac["OriginAccessControlOriginType"]) == (
        "sigv4",
        "always",
        "s3",
    )
    behavior = config["DefaultCacheBehavior"]
    assert behavior["CachePolicyId"] == "658327ea-f89d-4fab-a63d-7e88639e58f6"
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert (config["HttpVersion"], config["PriceClass"]) == ("http2and3", "PriceClass_100")
    tags = aws.cloudfront.list_tags_for_resource(Resource=dist["ARN"])["Tags"]["Items"]
    assert {t["Key"]: t["Value"] for t in tags} == {
        "Name": CALLER_REFERENCE,
        "Project": "railsdeploy",
        "Environment": "itest",
    }


def test_a_browsers_asset_url_maps_to_the_uploaded_object(first_run, aws):
    """https://<cdn>/assets/app-1a2b.css is fetched from origin path + request path: the uploaded object."""
    aws.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/app-1a2b.css", Body=b"body{}")
    (dist,) = aws.distributions(CALLER_REFERENCE)
    origin_path = dist["Config"]["Origins"]["Items"][0]["OriginPath"]

    key = (origin_path + "/assets/app-1a2b.css").lstrip("/")

    assert aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"body{}"


def test_second_run_changes_nothing(first_run, playbook):
    again = playbook()
    assert again.changed == 0, again.changed_tasks()
    assert again.facts == first_run.facts


def test_check_mode_changes_nothing(first_run, playbook):
    checked = playbook(BUCKET, "--check", "--diff")
    assert checked.changed == 0, checked.changed_tasks()
    assert checked.facts == first_run.facts


def test_a_changed_price_class_updates_the_distribution_in_place(first_run, playbook, aws):
    changed = playbook(BUCKET, "-e", "asset_cdn_price_class=PriceClass_All")
    assert changed.changed_tasks() == [
        "railsdeploy.aws.asset_cdn : CloudFront distribution serves the assets from the bucket through the Origin "
        "Access Control"
    ]
    (dist,) = aws.distributions(CALLER_REFERENCE)
    assert dist["Id"] == first_run.facts["distribution_id"]
    assert dist["Config"]["PriceClass"] == "PriceClass_All"
    assert playbook().changed == 1  # back to the default


def test_absent_removes_distribution_oac_and_bucket(playbook, aws):
    bucket = "itest-railsdeploy-gone"
    reference = f"{bucket}-production"
    playbook(bucket)
    assert aws.distributions(reference) and aws.oacs(reference) and bucket in aws.buckets()

    gone = playbook(bucket, "-e", "cdn_test_state=absent")

    assert gone.changed == 3, gone.changed_tasks()
    assert aws.distributions(reference) == []
    assert aws.oacs(reference) == []
    assert bucket not in aws.buckets()
    assert gone.facts["domain_name"] == ""
    assert playbook(bucket, "-e", "cdn_test_state=absent").changed == 0


def test_stock_moto_still_drops_the_oac():
    """Canary: when this fails, moto stores OriginAccessControlId and its fix in lab/moto_server.py can go."""
    from moto import mock_aws

    with mock_aws():
        cloudfront = boto3.client("cloudfront", region_name=REGION)
        created = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": "canary",
                "Comment": "",
                "Enabled": True,
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "s3",
                            "DomainName": f"{BUCKET}.s3.{REGION}.amazonaws.com",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                            "OriginAccessControlId": "E2QWRUHEXAMPLE",
                        }
                    ],
                },
                "DefaultCacheBehavior": {"TargetOriginId": "s3", "ViewerProtocolPolicy": "redirect-to-https"},
            }
        )
        config = cloudfront.get_distribution_config(Id=created["Distribution"]["Id"])["DistributionConfig"]
    assert "OriginAccessControlId" not in config["Origins"]["Items"][0]
