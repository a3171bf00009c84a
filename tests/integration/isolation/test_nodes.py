"""One environment never adopts another's instance.

Two environments of one project, with the same node names, subnet and AMI: provisioning the second launches a node
of its own, and the first environment's node keeps its tags (and so its inventory group, its deploys and its
secrets). roles/ec2_node, as provision.yml runs it, against a moto_server of its own (no Docker, no lab):
``.venv/bin/pytest tests/integration/isolation -v``.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from lablib.playbooks import JsonRun

HERE = Path(__file__).resolve().parent
PLAYBOOK = HERE / "nodes.yml"
INVENTORY = HERE.parent / "localhost.yml"
KEY = {"aws_access_key_id": "ISOTESTACCESSKEY0000", "aws_secret_access_key": "iso-test-secret-not-a-real-one"}


@pytest.fixture(scope="module")
def ec2(moto_url):
    return boto3.client("ec2", endpoint_url=moto_url, region_name="us-west-2", **KEY)


@pytest.fixture(scope="module")
def network(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.60.1.0/24", AvailabilityZone="us-west-2a")["Subnet"]
    ec2.create_key_pair(KeyName="shop-admins")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    return {"subnet": subnet["SubnetId"], "ami": ami}


@pytest.fixture(scope="module")
def provision(moto_url, ansible_playbook, network):
    def run(environment: str) -> JsonRun:
        return JsonRun(ansible_playbook(INVENTORY, PLAYBOOK, "-e", f"iso_endpoint_url={moto_url}",
                                        "-e", f"iso_environment={environment}", "-e", f"iso_subnet={network['subnet']}",
                                        "-e", f"iso_ami={network['ami']}", timeout=300))
    return run


def nodes(ec2) -> dict[str, dict[str, str]]:
    """{instance id: its tags} of every live instance named rails2001."""
    found = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["rails2001"]},
                                            {"Name": "instance-state-name", "Values": ["pending", "running"]}])
    return {i["InstanceId"]: {t["Key"]: t["Value"] for t in i.get("Tags", [])}
            for r in found["Reservations"] for i in r["Instances"]}


def test_a_second_environment_with_the_same_names_gets_nodes_of_its_own(ec2, provision):
    provision("production").ok()
    [(production_id, tags)] = nodes(ec2).items()
    assert tags["Environment"] == "production"

    staging = provision("staging").ok()
    assert staging.changed > 0, "staging launched nothing: it took production's node"
    after = nodes(ec2)
    assert len(after) == 2, f"two environments share rails2001: {after}"
    assert after[production_id]["Environment"] == "production", f"production's node was re-tagged: {after}"
    staging_ids = [i for i, t in after.items() if t["Environment"] == "staging"]
    assert len(staging_ids) == 1 and staging_ids[0] != production_id

    # Each environment's re-run finds its own node and changes nothing.
    assert provision("production").ok().changed == 0
    assert provision("staging").ok().changed == 0
    assert nodes(ec2) == after
