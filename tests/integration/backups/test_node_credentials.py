"""The backup bucket and the nodes' IAM roles, against a moto_server of its own that enforces IAM.

What a user relies on: the bucket is private, encrypted, versioned and TLS-only, with a lifecycle rule that never
expires a current object; each tier's nodes get a role through an instance profile; the PostgreSQL role may use the
backup prefix and nothing else, the rails role only pulling its image from ECR - no backup, no push, no other
repository (proven with the credentials a node gets, which moto checks against the roles' policies once its IAM
enforcement is on); a second run changes nothing.

moto evaluates identity policies (actions and resources) but neither policy conditions nor bucket policies: the
ListBucket statement (limited to the prefix by a condition) and the TLS-only bucket policy are read back, not
exercised. Run with ``.venv/bin/pytest tests/integration/backups -v`` (no Docker, no lab).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from lablib.playbooks import JsonRun

HERE = Path(__file__).resolve().parent
PLAYBOOK = HERE / "node_credentials.yml"
INVENTORY = HERE.parent / "localhost.yml"
REGION = "us-west-2"
BUCKET = "itest-railsdeploy-backups"
PREFIX = "pgbackrest"
ASSETS = "itest-railsdeploy-assets"
KEY = {"aws_access_key_id": "CREDSTESTACCESSKEY00", "aws_secret_access_key": "creds-test-secret-not-a-real-one"}


class Run(JsonRun):
    @property
    def facts(self) -> dict:
        return self.result("Node IAM facts are known")["msg"]


@pytest.fixture(scope="module")
def converge(moto_url, ansible_playbook):
    def run(*extra: str) -> Run:
        args = ["-e", f"creds_test_endpoint_url={moto_url}", "-e", f"creds_test_access_key={KEY['aws_access_key_id']}",
                "-e", f"creds_test_secret_key={KEY['aws_secret_access_key']}", *extra]
        return Run(ansible_playbook(INVENTORY, PLAYBOOK, *args, timeout=600)).ok()
    return run


@pytest.fixture(scope="module")
def first(converge) -> Run:
    return converge()


@pytest.fixture(scope="module")
def client(moto_url):
    def make(service: str, **credentials):
        return boto3.client(service, endpoint_url=moto_url, region_name=REGION, **(credentials or KEY))
    return make


def test_the_bucket_is_private_encrypted_versioned_and_tls_only(first, client):
    s3 = client("s3")
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                     "RestrictPublicBuckets": True}
    rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=BUCKET).get("Status") == "Enabled"
    (statement,) = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*" and statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sorted(statement["Resource"]) == [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]


def test_the_lifecycle_never_expires_a_current_object(first, client):
    (rule,) = client("s3").get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 14
    # An Expiration by age would delete WAL and backups that pgBackRest still needs for a restore.
    assert "Days" not in rule.get("Expiration", {}) and "Date" not in rule.get("Expiration", {}), rule


def test_each_tier_has_a_role_that_ec2_may_assume_through_its_instance_profile(first, client):
    iam = client("iam")
    assert first.facts["instance_profiles"] == {"rails": "railsdeploy-itest-rails",
                                                "postgres": "railsdeploy-itest-postgres"}
    for tier, name in first.facts["instance_profiles"].items():
        profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        assert [role["RoleName"] for role in profile["Roles"]] == [name]
        assert profile["Roles"][0]["Arn"] == first.facts["role_arns"][tier]
        trust = profile["Roles"][0]["AssumeRolePolicyDocument"]
        trust = json.loads(urllib.request.unquote(trust)) if isinstance(trust, str) else trust
        assert trust["Statement"] == [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                       "Action": "sts:AssumeRole"}]
    assert iam.list_role_policies(RoleName="railsdeploy-itest-rails")["PolicyNames"] == ["railsdeploy-itest-rails"]
    postgres_policies = iam.list_role_policies(RoleName="railsdeploy-itest-postgres")["PolicyNames"]
    assert postgres_policies == ["railsdeploy-itest-postgres"]


def test_a_second_run_changes_nothing(first, converge):
    again = converge()
    assert again.changed_tasks() == [], again.changed_tasks()


def _enforce_iam(moto_url: str, on: bool) -> None:
    """moto checks every request against the caller's IAM policies from now on (or no more)."""
    request = urllib.request.Request(f"{moto_url}/moto-api/reset-auth", data=b"0" if on else b"inf", method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).close()


def _denied(call) -> bool:
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"] in ("AccessDenied", "403")
    return False


def test_each_tiers_credentials_reach_only_what_the_tier_needs(first, client, moto_url):
    """Credentials as a node gets them (an assumed-role session), checked by moto once IAM enforcement is on."""
    admin = client("s3")
    admin.create_bucket(Bucket=ASSETS, CreateBucketConfiguration={"LocationConstraint": REGION})
    admin.put_object(Bucket=ASSETS, Key="production/assets/app.css", Body=b"body{}")
    admin.put_object(Bucket=BUCKET, Key=f"{PREFIX}/archive/itest/000000010000000000000001", Body=b"wal")
    admin.put_object(Bucket=BUCKET, Key="elsewhere/secret", Body=b"not for the database")
    sts = client("sts")
    session = {}
    for tier, arn in first.facts["role_arns"].items():
        creds = sts.assume_role(RoleArn=arn, RoleSessionName=f"i-itest-{tier}")["Credentials"]
        session[tier] = client("s3", aws_access_key_id=creds["AccessKeyId"],
                               aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    # From here on moto checks every request against the caller's policies.
    _enforce_iam(moto_url, True)
    try:
        pg, rails = session["postgres"], session["rails"]
        wal = f"{PREFIX}/archive/itest/000000010000000000000001"
        assert pg.get_object(Bucket=BUCKET, Key=wal)["Body"].read() == b"wal"
        pg.put_object(Bucket=BUCKET, Key=f"{PREFIX}/backup/itest/backup.info", Body=b"info")
        pg.delete_object(Bucket=BUCKET, Key=f"{PREFIX}/backup/itest/backup.info")
        assert _denied(lambda: pg.get_object(Bucket=BUCKET, Key="elsewhere/secret")), "outside the backup prefix"
        assert _denied(lambda: pg.put_object(Bucket=BUCKET, Key="elsewhere/x", Body=b"x")), "outside the prefix"
        assert _denied(lambda: pg.get_object(Bucket=ASSETS, Key="production/assets/app.css")), "the asset bucket"
        assert _denied(lambda: rails.get_object(Bucket=BUCKET, Key=wal)), "a rails node read a backup"
        assert _denied(lambda: rails.list_objects_v2(Bucket=BUCKET)), "a rails node listed the backups"
        assert _denied(lambda: rails.put_object(Bucket=BUCKET, Key=f"{PREFIX}/x", Body=b"x")), "a rails node wrote"
    finally:
        _enforce_iam(moto_url, False)


def test_a_rails_node_may_pull_its_image_from_ecr_and_nothing_more(first, client, moto_url):
    """What docker-credential-ecr-login and the pull do with a rails node's credentials. moto checks ECR actions but
    not ECR resources (it evaluates every ECR request against the resource "*"): the token and the refused push are
    exercised, the repositories the pull is limited to are read back from the role's policy."""
    iam = client("iam")
    document = iam.get_role_policy(RoleName="railsdeploy-itest-rails", PolicyName="railsdeploy-itest-rails")
    document = document["PolicyDocument"]
    document = json.loads(urllib.request.unquote(document)) if isinstance(document, str) else document
    assert document["Statement"] == [
        {"Sid": "EcrToken", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Sid": "EcrPull", "Effect": "Allow",
         "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
         "Resource": ["arn:aws:ecr:us-west-2:123456789012:repository/itest/shop"]}]
    client("ecr").create_repository(repositoryName="itest/shop")
    ecr = {}
    for tier, arn in first.facts["role_arns"].items():
        creds = client("sts").assume_role(RoleArn=arn, RoleSessionName=f"i-itest-{tier}")["Credentials"]
        ecr[tier] = client("ecr", aws_access_key_id=creds["AccessKeyId"],
                           aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    _enforce_iam(moto_url, True)
    try:
        token = ecr["rails"].get_authorization_token()["authorizationData"][0]
        assert token["proxyEndpoint"].endswith(".dkr.ecr.us-west-2.amazonaws.com")
        assert _denied(lambda: ecr["rails"].put_image(repositoryName="itest/shop", imageTag="2", imageManifest="{}")), \
            "a rails node pushed an image"
        assert _denied(lambda: ecr["rails"].delete_repository(repositoryName="itest/shop")), "a rails node deleted"
        assert _denied(lambda: ecr["postgres"].get_authorization_token()), \
            "a PostgreSQL node, none of whose images is in ECR, got an ECR token"
    finally:
        _enforce_iam(moto_url, False)
