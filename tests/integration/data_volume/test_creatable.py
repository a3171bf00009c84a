"""provision.yml never makes a blank data volume while this environment's data is elsewhere.

roles/ebs_data_volume's "creatable" entry point, as provision.yml runs it before any node or volume is made, against
a moto_server of its own: nothing at all - a blank volume may be made; the volume under its name - nothing to make;
the volume renamed, a snapshot of a lost volume, base backups - refused naming them and the way out, unless
``-e create_data_volume=true``; two volumes of the name - refused; a standby's volume (filled by replication) made
blank while another data volume exists, refused when only a snapshot is left. Run with ``.venv/bin/pytest
tests/integration/data_volume -v`` (no Docker, no lab).
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from lablib.playbooks import JsonRun

HERE = Path(__file__).resolve().parent
PLAYBOOK = HERE / "creatable.yml"
INVENTORY = HERE.parent / "localhost.yml"
NAME = "shop-production-postgres2001-data"
TAGS = {"Project": "shop", "Environment": "production", "Role": "postgres-data"}
ZONE = "us-west-2a"
BUCKET = "shop-backups"
KEY = {"aws_access_key_id": "DVTESTACCESSKEY00000", "aws_secret_access_key": "dv-test-secret-not-a-real-one"}


@pytest.fixture
def ec2(moto_url):
    client = boto3.client("ec2", endpoint_url=moto_url, region_name="us-west-2", **KEY)
    yield client
    for snap in client.describe_snapshots(Filters=[{"Name": "tag:Project", "Values": ["shop"]}])["Snapshots"]:
        client.delete_snapshot(SnapshotId=snap["SnapshotId"])
    for vol in client.describe_volumes()["Volumes"]:
        client.delete_volume(VolumeId=vol["VolumeId"])


@pytest.fixture(autouse=True)
def s3(moto_url):
    """The backup bucket, empty: base backups are looked for in it only when the volume is missing."""
    client = boto3.client("s3", endpoint_url=moto_url, region_name="us-west-2", **KEY)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    yield client
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def run(moto_url, ansible_playbook):
    def run(*extra: str) -> JsonRun:
        return JsonRun(ansible_playbook(INVENTORY, PLAYBOOK, "-e", f"dv_test_endpoint_url={moto_url}", *extra,
                                        timeout=300))
    return run


def volume(ec2, **tags) -> str:
    spec = [{"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
    return ec2.create_volume(AvailabilityZone=ZONE, Size=1, TagSpecifications=spec)["VolumeId"]


def test_a_new_environment_may_get_a_blank_volume(ec2, run):
    run().ok()


def test_the_named_volume_is_all_there_is_to_check(ec2, run):
    volume(ec2, Name=NAME, **TAGS)
    run().ok()


def test_a_renamed_data_volume_is_named_and_no_blank_one_allowed(ec2, run):
    renamed = volume(ec2, Name="shop-prod-postgres2001-data", **TAGS)
    failed = run()
    assert failed.rc != 0
    message = failed.failure()
    for words in ("No volume is named " + NAME, f"volume {renamed} (named shop-prod-postgres2001-data)",
                  "give it back the name", "-e create_data_volume=true", "Nothing was changed"):
        assert words in message, message
    run("-e", "create_data_volume=true").ok()


def test_a_snapshot_or_backups_of_a_lost_volume_stop_it(ec2, s3, run):
    lost = volume(ec2, Name=NAME, **TAGS)
    snap = ec2.create_snapshot(VolumeId=lost, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
        {"Key": "Project", "Value": "shop"}, {"Key": "Environment", "Value": "production"}]}])["SnapshotId"]
    ec2.delete_volume(VolumeId=lost)
    message = run().failure()
    assert f"snapshot {snap} of {lost}" in message, message
    ec2.delete_snapshot(SnapshotId=snap)
    s3.put_object(Bucket=BUCKET, Key="pgbackrest/backup/shop-production/backup.info", Body=b"[backup:current]\n")
    message = run().failure()
    assert "base backups in s3://shop-backups/pgbackrest/backup/shop-production/" in message, message
    assert f"snapshot {snap}" not in message, message


def test_another_environments_data_is_not_this_ones(ec2, s3, run):
    volume(ec2, Name="shop-staging-postgres2001-data", Project="shop", Environment="staging", Role="postgres-data")
    s3.put_object(Bucket=BUCKET, Key="pgbackrest/backup/shop-staging/backup.info", Body=b"[backup:current]\n")
    run().ok()


def test_two_volumes_of_the_name_are_refused(ec2, run):
    first, second = volume(ec2, Name=NAME, **TAGS), volume(ec2, Name=NAME, **TAGS)
    message = run().failure()
    assert f"2 volumes are named {NAME} ({first}, {second})" in message or f"({second}, {first})" in message, message


STANDBY = ("-e", "dv_test_node=postgres2002", "-e", "dv_test_standby=true")


def test_a_standbys_volume_may_be_made_blank_while_the_primarys_exists(ec2, run):
    volume(ec2, Name=NAME, **TAGS)
    run(*STANDBY).ok()


def test_a_standbys_volume_is_not_made_blank_when_only_a_snapshot_holds_the_data(ec2, run):
    lost = volume(ec2, Name=NAME, **TAGS)
    snap = ec2.create_snapshot(VolumeId=lost, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
        {"Key": "Project", "Value": "shop"}, {"Key": "Environment", "Value": "production"}]}])["SnapshotId"]
    ec2.delete_volume(VolumeId=lost)
    message = run(*STANDBY).failure()
    for words in (f"snapshot {snap} of {lost}", "made blank only while another data volume exists to replicate from",
                  "Nothing was changed"):
        assert words in message, message


def test_the_first_nodes_volume_is_not_made_blank_beside_the_standbys(ec2, run):
    """After a failover the standby's volume holds the data: a blank volume for the first node is refused."""
    standby = volume(ec2, Name="shop-production-postgres2002-data", **TAGS)
    message = run().failure()
    assert f"volume {standby} (named shop-production-postgres2002-data)" in message, message
