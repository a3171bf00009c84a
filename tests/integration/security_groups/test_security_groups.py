"""The security groups say exactly what each tier may reach (docs/design/standby.md, section 7).

roles/security_groups, as provision.yml runs it, against a moto_server of its own (no Docker, no lab): the rails
nodes reach PostgreSQL's 5432 and Patroni's REST API (the node proxies' leader check); the PostgreSQL nodes reach each
other for replication, Patroni and etcd; with a witness, it and the PostgreSQL nodes reach each other's etcd and
nothing else; no rule names a network but SSH's and the load balancer's; a second run changes nothing; turning the
witness off takes its rule out of the PostgreSQL group. ``.venv/bin/pytest tests/integration/security_groups -v``.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from lablib.playbooks import JsonRun

HERE = Path(__file__).resolve().parent
PLAYBOOK = HERE / "security_groups.yml"
INVENTORY = HERE.parent / "localhost.yml"
PREFIX = "shop-production"
KEY = {"aws_access_key_id": "SGTESTACCESSKEY00000", "aws_secret_access_key": "sg-test-secret-not-a-real-one"}


@pytest.fixture(scope="module")
def ec2(moto_url):
    return boto3.client("ec2", endpoint_url=moto_url, region_name="us-west-2", **KEY)


@pytest.fixture(scope="module")
def vpc(ec2):
    return ec2.create_vpc(CidrBlock="10.70.0.0/16")["Vpc"]["VpcId"]


@pytest.fixture(scope="module")
def playbook(moto_url, ansible_playbook):
    def run(vpc: str, witness: bool) -> JsonRun:
        return JsonRun(ansible_playbook(INVENTORY, PLAYBOOK, "-e", f"sg_test_endpoint_url={moto_url}",
                                        "-e", f"sg_test_vpc={vpc}", "-e", f"sg_test_witness={witness}",
                                        timeout=300)).ok()
    return run


@pytest.fixture(scope="module")
def run(playbook, vpc):
    return lambda witness: playbook(vpc, witness)


def groups(ec2, vpc) -> dict[str, dict]:
    """{tier: group} of this deployment's groups (named <prefix>-<tier>)."""
    found = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
    return {g["GroupName"].removeprefix(PREFIX + "-"): g for g in found if g["GroupName"].startswith(PREFIX + "-")}


def admitted(group: dict, ids: dict[str, str]) -> set[tuple[int, str]]:
    """(port, source) pairs a group admits: the source is a tier's name, or a network."""
    tier = {gid: name for name, gid in ids.items()}
    out = set()
    for perm in group["IpPermissions"]:
        assert perm["FromPort"] == perm["ToPort"], perm  # one port per rule entry, as the role writes them
        out |= {(perm["FromPort"], tier.get(pair["GroupId"], pair["GroupId"])) for pair in perm["UserIdGroupPairs"]}
        out |= {(perm["FromPort"], r["CidrIp"]) for r in perm["IpRanges"]}
    return out


CLUSTER = {(5432, "postgres"), (8008, "postgres"), (2379, "postgres"), (2380, "postgres")}
FROM_RAILS = {(5432, "rails"), (8008, "rails")}


def test_postgres_admits_the_app_and_the_leader_check_from_rails_and_its_cluster_from_itself(ec2, vpc, run):
    run(witness=False)
    found = groups(ec2, vpc)
    ids = {name: g["GroupId"] for name, g in found.items()}
    assert "witness" not in found, "a witness group without a witness"
    assert admitted(found["postgres"], ids) == FROM_RAILS | CLUSTER
    assert admitted(found["rails"], ids) == {(80, "lb")}
    assert admitted(found["lb"], ids) == {(80, "0.0.0.0/0"), (443, "0.0.0.0/0")}
    assert admitted(found["ssh"], ids) == {(22, "203.0.113.0/24")}
    # A second run without a witness changes nothing: the provision scenario's idempotence run proves it in the lab.


def test_the_witness_and_the_postgres_nodes_reach_each_others_etcd_and_nothing_else(ec2, vpc, run):
    run(witness=True)
    found = groups(ec2, vpc)
    ids = {name: g["GroupId"] for name, g in found.items()}
    assert admitted(found["witness"], ids) == {(2379, "postgres"), (2380, "postgres")}
    assert admitted(found["postgres"], ids) == FROM_RAILS | CLUSTER | {(2380, "witness")}
    assert found["witness"]["Tags"] and {t["Key"]: t["Value"] for t in found["witness"]["Tags"]}["Name"] == \
        f"{PREFIX}-witness"
    assert run(witness=True).changed == 0

    run(witness=False)
    found = groups(ec2, vpc)
    assert admitted(found["postgres"], ids) == FROM_RAILS | CLUSTER, "the witness's rule stayed after it went"


def test_the_previous_releases_groups_gain_the_new_rules(ec2, playbook):
    """An environment provisioned before the standby: its PostgreSQL group admits 5432 from the rails group only."""
    vpc = ec2.create_vpc(CidrBlock="10.71.0.0/16")["Vpc"]["VpcId"]

    def group(tier: str, description: str) -> str:
        return ec2.create_security_group(GroupName=f"{PREFIX}-{tier}", Description=description, VpcId=vpc)["GroupId"]

    lb = group("lb", "HTTP and HTTPS to the load balancer")
    rails = group("rails", "The node port from the load balancer")
    postgres = group("postgres", "PostgreSQL from the rails nodes (their private addresses)")
    ec2.authorize_security_group_ingress(GroupId=postgres, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "UserIdGroupPairs": [{"GroupId": rails, "Description": "rails nodes"}]}])
    playbook(vpc, witness=False)
    found = groups(ec2, vpc)
    assert found["postgres"]["GroupId"] == postgres and found["lb"]["GroupId"] == lb
    assert admitted(found["postgres"], {"rails": rails, "postgres": postgres}) == FROM_RAILS | CLUSTER
