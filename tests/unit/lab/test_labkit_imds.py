"""Unit tests for lab/labkit/imds.py: the lab's instance metadata service (IMDSv2) in front of moto.

No lab is needed: an in-process moto server (ThreadedMotoServer on 127.0.0.1) holds the instances, roles and
instance profiles, and each test starts the service on 127.0.0.1. Every request of a test comes from
127.0.0.1, so the service is given a ``source_map`` that says which private IP that is; the lookup from that IP
to the instance is the production path (DescribeInstances filtered on private-ip-address).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from labkit import aws, imds
from labkit.net import free_port, wait_http
from moto.server import ThreadedMotoServer

ROLE = "railsdeploy-lab-pg"
PROFILE = "railsdeploy-lab-pg-profile"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
STAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


# --- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def cloud(moto_url: str) -> dict[str, Any]:
    """A subnet, an AMI, a role with an instance profile, and a launcher for instances in that subnet."""
    ec2, iam = aws.client("ec2", endpoint_url=moto_url), aws.client("iam", endpoint_url=moto_url)
    vpc = ec2.create_vpc(CidrBlock="10.213.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.213.1.0/24", AvailabilityZone="us-west-2a")
    ami = ec2.register_image(Name="imds-test", Architecture="x86_64", RootDeviceName="/dev/xvda",
                             VirtualizationType="hvm")["ImageId"]
    role_arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    iam.create_instance_profile(InstanceProfileName=PROFILE)
    iam.add_role_to_instance_profile(InstanceProfileName=PROFILE, RoleName=ROLE)
    profile = iam.get_instance_profile(InstanceProfileName=PROFILE)["InstanceProfile"]
    subnet_id = subnet["Subnet"]["SubnetId"]

    def launch(ip: str, *, profile: bool = True, tokens: str = "required", hop_limit: int = 2,
               endpoint: str = "enabled", subnet: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if profile:
            kwargs["IamInstanceProfile"] = {"Name": PROFILE}
        inst = ec2.run_instances(
            ImageId=ami, InstanceType="t3.small", MinCount=1, MaxCount=1, SubnetId=subnet or subnet_id,
            PrivateIpAddress=ip, MetadataOptions={"HttpTokens": tokens, "HttpPutResponseHopLimit": hop_limit,
                                                  "HttpEndpoint": endpoint}, **kwargs)["Instances"][0]
        return inst

    return {"ec2": ec2, "iam": iam, "sts": aws.client("sts", endpoint_url=moto_url), "ami": ami, "subnet": subnet_id,
            "role_arn": role_arn, "profile": profile, "launch": launch}


@pytest.fixture(scope="module")
def node(cloud: dict[str, Any]) -> dict[str, Any]:
    """The instance most tests ask as: IMDSv2 required, hop limit 2, the role's instance profile."""
    return cloud["launch"]("10.213.1.10")


@pytest.fixture
def start(moto_url: str) -> Iterator[Callable[..., tuple[imds.ImdsServer, str]]]:
    """start(source_ip, **kwargs) -> (server, base url): an ImdsServer on 127.0.0.1 that takes every request
    as coming from source_ip (or from source_ip[0], when it is a list). Each is shut down after the test."""
    servers: list[imds.ImdsServer] = []

    def _start(source_ip: str | list[str], **kwargs: Any) -> tuple[imds.ImdsServer, str]:
        kwargs.setdefault("quiet", True)
        # A list is a cell the test may change: the next request then comes "from" its new first item.
        cell = source_ip if isinstance(source_ip, list) else [source_ip]
        server = imds.ImdsServer("127.0.0.1", 0, moto_url, source_map=lambda _peer: cell[0], **kwargs)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_address[1]}"

    yield _start
    for server in servers:
        server.shutdown()
        server.server_close()


class Seen(list):
    """Records the server observed; ``wait(n)`` returns once n are in (the server records a request just after
    writing its reply, so a client can have the reply a moment before the record exists)."""

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()

    def __call__(self, record: imds.Record) -> None:
        with self._cond:
            self.append(record)
            self._cond.notify_all()

    def wait(self, n: int) -> Seen:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self) >= n, timeout=10), f"{len(self)} of {n} requests seen"
        return self


def call(base: str, method: str, path: str, headers: dict[str, str] | None = None
         ) -> tuple[int, str, http.client.HTTPMessage]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), resp.headers
    finally:
        conn.close()


def token(base: str, ttl: str = "21600") -> str:
    status, body, _ = call(base, "PUT", "/latest/api/token", {imds.TTL_HEADER: ttl})
    assert status == 200, body
    return body


def get(base: str, path: str, tok: str | None = None) -> tuple[int, str, http.client.HTTPMessage]:
    return call(base, "GET", path, {imds.TOKEN_HEADER: tok} if tok is not None else {})


# --- IMDSv2 semantics -----------------------------------------------------------------------------------------


def test_get_without_token_is_401_when_tokens_are_required(start, node):
    _, base = start(node["PrivateIpAddress"])
    status, body, _ = get(base, "/latest/meta-data/instance-id")
    assert status == 401
    assert node["InstanceId"] not in body


def test_token_flow_serves_the_instance_metadata(start, node, cloud):
    _, base = start(node["PrivateIpAddress"])
    tok = token(base)
    md = "/latest/meta-data/"
    assert get(base, md + "instance-id", tok)[:2] == (200, node["InstanceId"])
    assert get(base, md + "local-ipv4", tok)[:2] == (200, "10.213.1.10")
    assert get(base, md + "placement/availability-zone", tok)[:2] == (200, "us-west-2a")
    assert get(base, md + "placement/region", tok)[:2] == (200, "us-west-2")
    status, body, headers = get(base, "/latest/dynamic/instance-identity/document", tok)
    assert status == 200 and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert {k: doc[k] for k in ("instanceId", "region", "availabilityZone", "privateIp", "imageId",
                                "instanceType")} == {
        "instanceId": node["InstanceId"], "region": "us-west-2", "availabilityZone": "us-west-2a",
        "privateIp": "10.213.1.10", "imageId": cloud["ami"], "instanceType": "t3.small"}
    assert re.fullmatch(r"\d{12}", doc["accountId"])
    status, body, _ = get(base, "/latest/meta-data/iam/info", tok)
    info = json.loads(body)
    assert status == 200 and info["Code"] == "Success" and STAMP_RE.match(info["LastUpdated"])
    assert info["InstanceProfileArn"] == cloud["profile"]["Arn"]
    assert info["InstanceProfileId"] == cloud["profile"]["InstanceProfileId"]
    assert get(base, md + "no-such-thing", tok)[0] == 404
    assert get(base, "/latest/user-data", tok)[0] == 404


def test_credentials_are_the_roles_sts_keys_in_ec2s_format(start, node, cloud):
    _, base = start(node["PrivateIpAddress"])
    tok = token(base)
    # pgBackRest asks without the trailing slash, botocore with it: both are the role name, nothing else.
    for path in ("/latest/meta-data/iam/security-credentials", "/latest/meta-data/iam/security-credentials/"):
        assert get(base, path, tok)[:2] == (200, ROLE)
    status, body, headers = get(base, f"/latest/meta-data/iam/security-credentials/{ROLE}", tok)
    assert status == 200 and headers["Content-Type"] == "application/json"
    creds = json.loads(body)
    assert list(creds) == ["Code", "LastUpdated", "Type", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"]
    assert creds["Code"] == "Success" and creds["Type"] == "AWS-HMAC"
    assert STAMP_RE.match(creds["Expiration"]) and STAMP_RE.match(creds["LastUpdated"])
    assert creds["AccessKeyId"].startswith("ASIA") and creds["Token"]
    assert creds["Expiration"] > creds["LastUpdated"]
    # Keys moto's STS issued for this role and this instance, not anything made up.
    ident = boto3.client("sts", endpoint_url=cloud["sts"].meta.endpoint_url, region_name="us-west-2",
                         aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["Token"]).get_caller_identity()
    assert ident["Arn"].endswith(f":assumed-role/{ROLE}/{node['InstanceId']}")
    assert get(base, "/latest/meta-data/iam/security-credentials/other-role", tok)[0] == 404


def test_boto3_credential_chain_gets_the_role_from_the_service(start, node, cloud, moto_url, tmp_path, monkeypatch):
    _, base = start(node["PrivateIpAddress"])
    for var in list(os.environ):
        if var.startswith(("AWS_", "BOTO_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", base + "/")
    # botocore gives IMDS 1 s and one attempt by default; the first answer costs a moto lookup and an AssumeRole.
    monkeypatch.setenv("AWS_METADATA_SERVICE_TIMEOUT", "10")
    monkeypatch.setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "2")
    session = boto3.Session(region_name="us-west-2")
    creds = session.get_credentials()
    assert creds is not None and creds.method == "iam-role"
    frozen = creds.get_frozen_credentials()
    assert frozen.access_key.startswith("ASIA") and frozen.token
    status, body, _ = get(base, f"/latest/meta-data/iam/security-credentials/{ROLE}", token(base))
    assert frozen.access_key == json.loads(body)["AccessKeyId"]
    ident = session.client("sts", endpoint_url=moto_url).get_caller_identity()
    account = cloud["role_arn"].split(":")[4]
    assert ident["Arn"] == f"arn:aws:sts::{account}:assumed-role/{ROLE}/{node['InstanceId']}"


def test_instance_without_profile_has_no_credentials(start, cloud):
    inst = cloud["launch"]("10.213.1.20", profile=False)
    _, base = start("10.213.1.20")
    tok = token(base)
    assert get(base, "/latest/meta-data/instance-id", tok)[:2] == (200, inst["InstanceId"])
    for path in ("iam/security-credentials", "iam/security-credentials/", f"iam/security-credentials/{ROLE}",
                 "iam/info"):
        assert get(base, "/latest/meta-data/" + path, tok)[0] == 404, path


def test_profile_without_a_role_has_info_but_no_credentials(start, cloud):
    cloud["iam"].create_instance_profile(InstanceProfileName="empty-profile")
    inst = cloud["ec2"].run_instances(
        ImageId=cloud["ami"], InstanceType="t3.small", MinCount=1, MaxCount=1, PrivateIpAddress="10.213.1.25",
        SubnetId=cloud["subnet"],
        IamInstanceProfile={"Name": "empty-profile"}, MetadataOptions={"HttpTokens": "required"})["Instances"][0]
    _, base = start("10.213.1.25")
    tok = token(base)
    status, body, _ = get(base, "/latest/meta-data/iam/info", tok)
    assert status == 200 and json.loads(body)["InstanceProfileArn"] == inst["IamInstanceProfile"]["Arn"]
    for path in ("iam/security-credentials", "iam/security-credentials/"):
        assert get(base, "/latest/meta-data/" + path, tok)[0] == 404, path


@pytest.mark.parametrize("ttl", [None, "0", "21601", "abc", "-5", "1.5", "", "\u00b2"])
def test_token_request_with_bad_ttl_is_400(start, node, ttl):
    _, base = start(node["PrivateIpAddress"])
    status, body, _ = call(base, "PUT", "/latest/api/token", {imds.TTL_HEADER: ttl} if ttl is not None else {})
    assert status == 400
    assert imds.TTL_HEADER in body


def test_token_ttl_bounds_are_accepted(start, node):
    _, base = start(node["PrivateIpAddress"])
    for ttl in ("1", "21600"):
        assert get(base, "/latest/meta-data/instance-id", token(base, ttl))[0] == 200


def test_token_request_through_a_proxy_is_403(start, node):
    _, base = start(node["PrivateIpAddress"])
    status, _, _ = call(base, "PUT", "/latest/api/token", {imds.TTL_HEADER: "60", "X-Forwarded-For": "192.0.2.7"})
    assert status == 403


def test_bad_foreign_or_expired_token_is_401(start, node, cloud):
    now = [time.time()]
    other = cloud["launch"]("10.213.1.30")
    source = [node["PrivateIpAddress"]]
    _, base = start(source, clock=lambda: now[0])
    path = "/latest/meta-data/instance-id"
    assert get(base, path, "not-a-token")[0] == 401
    mine = token(base)
    source[0] = "10.213.1.30"  # the same service, asked by the other instance
    theirs = token(base)
    assert get(base, path, theirs)[:2] == (200, other["InstanceId"])
    assert get(base, path, mine)[0] == 401  # a token is bound to the instance it was issued to
    source[0] = node["PrivateIpAddress"]
    assert get(base, path, theirs)[0] == 401
    assert get(base, path, mine)[:2] == (200, node["InstanceId"])
    short = token(base, "60")
    assert get(base, path, short)[0] == 200
    now[0] += 61
    assert get(base, path, short)[0] == 401


def test_tokens_optional_answers_imdsv1_but_still_checks_a_token_given(start, cloud):
    inst = cloud["launch"]("10.213.1.40", tokens="optional")
    _, base = start("10.213.1.40")
    assert get(base, "/latest/meta-data/instance-id")[:2] == (200, inst["InstanceId"])
    assert get(base, "/latest/meta-data/instance-id", "forged")[0] == 401


def test_disabled_endpoint_is_403(start, cloud):
    cloud["launch"]("10.213.1.50", endpoint="disabled")
    _, base = start("10.213.1.50")
    assert call(base, "PUT", "/latest/api/token", {imds.TTL_HEADER: "60"})[0] == 403
    assert get(base, "/latest/meta-data/instance-id")[0] == 403


def test_unknown_source_ip_is_404_naming_the_address(start, moto_url):
    _, base = start("10.213.9.9")
    status, body, _ = call(base, "PUT", "/latest/api/token", {imds.TTL_HEADER: "60"})
    assert status == 404 and "10.213.9.9" in body
    assert get(base, "/latest/meta-data/instance-id")[0] == 404


# --- the hop limit --------------------------------------------------------------------------------------------


def test_token_reply_leaves_with_the_hop_limit_as_ip_ttl(start, node, cloud):
    """The TTL the socket had when the reply was written (read back with getsockopt) is the instance's
    HttpPutResponseHopLimit for the token reply, and the system default for the rest."""
    with socket.socket() as probe:
        default_ttl = probe.getsockopt(socket.IPPROTO_IP, socket.IP_TTL)
    assert default_ttl not in (1, 2, 3)
    cloud["launch"]("10.213.1.60", hop_limit=3)
    seen = Seen()
    _, base = start(node["PrivateIpAddress"], observe=seen)
    _, base3 = start("10.213.1.60", observe=seen)
    status, _, headers = call(base, "PUT", "/latest/api/token", {imds.TTL_HEADER: "60"})
    assert status == 200 and headers["Connection"] == "close"
    token(base3)
    get(base, "/latest/meta-data/instance-id", token(base))
    seen.wait(4)
    assert sorted(r.ttl for r in seen if r.method == "PUT") == [2, 2, 3]
    assert [r.ttl for r in seen if r.method == "GET"] == [default_ttl]


def test_error_replies_to_token_requests_keep_the_default_ttl(start, node):
    with socket.socket() as probe:
        default_ttl = probe.getsockopt(socket.IPPROTO_IP, socket.IP_TTL)
    seen = Seen()
    _, base = start(node["PrivateIpAddress"], observe=seen)
    call(base, "PUT", "/latest/api/token", {imds.TTL_HEADER: "0"})
    assert [(r.status, r.ttl) for r in seen.wait(1)] == [(400, default_ttl)]


# --- caching ------------------------------------------------------------------------------------------------


def test_lookups_are_cached_and_a_replaced_instance_is_seen(start, cloud):
    ec2 = cloud["ec2"]
    now = [time.time()]
    first = cloud["launch"]("10.213.1.70")
    server, base = start("10.213.1.70", clock=lambda: now[0], lookup_ttl=3.0)
    tok = token(base)
    before = server.lookups
    for _ in range(10):
        assert get(base, "/latest/meta-data/instance-id", tok)[:2] == (200, first["InstanceId"])
    assert server.lookups == before  # the burst cost no DescribeInstances
    ec2.terminate_instances(InstanceIds=[first["InstanceId"]])
    # moto keeps a terminated instance's private IP taken in its subnet ("IP already in use"): the replacement
    # gets the same IP in a subnet of another VPC with the same CIDR, which is the same to the service.
    vpc = ec2.create_vpc(CidrBlock="10.213.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_subnet(VpcId=vpc, CidrBlock="10.213.1.0/24", AvailabilityZone="us-west-2b")
    second = cloud["launch"]("10.213.1.70", subnet=other["Subnet"]["SubnetId"])
    now[0] += 2.9
    assert get(base, "/latest/meta-data/instance-id", tok)[:2] == (200, first["InstanceId"])  # still cached
    now[0] += 0.2
    # The old instance's token names the old instance: it no longer opens anything.
    assert get(base, "/latest/meta-data/instance-id", tok)[0] == 401
    assert get(base, "/latest/meta-data/instance-id", token(base))[:2] == (200, second["InstanceId"])
    assert get(base, "/latest/meta-data/placement/availability-zone", token(base))[1] == "us-west-2b"


def test_credentials_are_cached_and_renewed_before_they_expire(start, node):
    now = [time.time()]
    _, base = start(node["PrivateIpAddress"], clock=lambda: now[0])
    tok = token(base)
    path = f"/latest/meta-data/iam/security-credentials/{ROLE}"
    one = json.loads(get(base, path, tok)[1])
    assert json.loads(get(base, path, tok)[1])["AccessKeyId"] == one["AccessKeyId"]
    now[0] += 30 * 60  # moto's keys last an hour: 30 minutes left, no renewal yet
    assert json.loads(get(base, path, tok)[1])["AccessKeyId"] == one["AccessKeyId"]
    now[0] += 16 * 60  # 14 minutes left: renewed
    two = json.loads(get(base, path, tok)[1])
    assert two["AccessKeyId"] != one["AccessKeyId"]
    assert two["Expiration"] >= one["Expiration"]


# --- logging --------------------------------------------------------------------------------------------------


def test_one_log_line_per_request(start, node, capsys):
    seen = Seen()
    _, base = start(node["PrivateIpAddress"], quiet=False, observe=seen)
    get(base, "/latest/meta-data/instance-id")
    seen.wait(1)  # the line is printed before the record is made
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "/latest/" in ln]
    assert lines == [f"127.0.0.1 GET /latest/meta-data/instance-id 401 {node['InstanceId']}"]


# --- the service process --------------------------------------------------------------------------------------


def test_serve_runs_until_sigterm_and_logs_each_request(moto_url, service_process):
    port = free_port()
    proc = service_process(f"from labkit import imds; imds.serve('127.0.0.1', {port}, {moto_url!r})")
    try:
        wait_http(f"http://127.0.0.1:{port}/", seconds=30, alive=lambda: proc.poll() is None)
        status, body, _ = get(f"http://127.0.0.1:{port}", "/latest/meta-data/instance-id")
        assert status == 404 and "127.0.0.1" in body  # no lab instance has the test's address
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "127.0.0.1 GET /latest/meta-data/instance-id 404 -" in out.splitlines()
    assert out.rstrip().endswith("imds: stopped")
