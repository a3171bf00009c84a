"""ec2_host_keys_info: host keys parsed from console output, and read from EC2 in-process against moto."""

from __future__ import annotations

import base64
import struct

import boto3
import pytest
from _aws_module import ACCESS_KEY, SECRET_KEY, as_on_a_node, run_aws_module
from moto import mock_aws
from moto.ec2.responses import general

from ansible_collections.railsdeploy.aws.plugins.modules import ec2_host_keys_info
from ansible_collections.railsdeploy.aws.plugins.modules.ec2_host_keys_info import host_keys


def blob(key_type: str, body: bytes = b"\x01" * 32) -> str:
    """A public key blob as OpenSSH writes it: the type, length-prefixed, then the key material."""
    raw = struct.pack(">I", len(key_type)) + key_type.encode() + struct.pack(">I", len(body)) + body
    return base64.b64encode(raw).decode()


ED = "ssh-ed25519 " + blob("ssh-ed25519")
EC = "ecdsa-sha2-nistp256 " + blob("ecdsa-sha2-nistp256", b"\x04" * 65)
ED2 = "ssh-ed25519 " + blob("ssh-ed25519", b"\x02" * 32)


def console(*keys: str, prefix: str = "") -> str:
    return "\n".join([
        f"{prefix}Cloud-init v. 23.1 running 'modules:final'",
        f"{prefix}-----BEGIN SSH HOST KEY FINGERPRINTS-----",
        f"{prefix}256 SHA256:abc root@ip-10-0-1-5 (ED25519)",
        f"{prefix}-----END SSH HOST KEY FINGERPRINTS-----",
        f"{prefix}-----BEGIN SSH HOST KEY KEYS-----",
        *[f"{prefix}{k} root@ip-10-0-1-5" for k in keys],
        f"{prefix}-----END SSH HOST KEY KEYS-----",
        f"{prefix}Cloud-init v. 23.1 finished",
    ])


def test_keys_between_the_markers_are_read_without_their_comment():
    assert host_keys(console(EC, ED)) == [EC, ED]


def test_console_prefixes_are_allowed():
    assert host_keys(console(ED, prefix="[   12.345678] ec2: ")) == [ED]


def test_the_most_recent_block_wins():
    assert host_keys(console(ED) + "\n" + console(ED2)) == [ED2]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Linux version 6.1.0 ... no cloud-init here",
        console(ED).replace("-----END SSH HOST KEY KEYS-----", ""),  # the output was cut before the block ended
    ],
)
def test_no_complete_block_means_no_keys(text):
    assert host_keys(text) == []


def test_a_line_whose_key_is_not_of_its_stated_type_is_skipped():
    forged = f"ssh-ed25519 {blob('ssh-rsa')}"
    assert host_keys(console(forged, EC, "ssh-ed25519 AAAAnot-base64!")) == [EC]


def run(args, monkeypatch, capsys, output: str | None):
    as_on_a_node(monkeypatch)
    if output is not None:
        monkeypatch.setattr(general, "SAMPLE_CONSOLE_OUTPUT", output)
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id=ACCESS_KEY,
                           aws_secret_access_key=SECRET_KEY)
        ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        result = run_aws_module(
            ec2_host_keys_info.main, {"instance_ids": [iid], **args}, monkeypatch, capsys, region="eu-west-1",
            check_mode=True,
        )
    return iid, result


def test_keys_are_read_from_the_instances_console_in_check_mode(monkeypatch, capsys):
    iid, result = run({}, monkeypatch, capsys, console(EC, ED))

    assert result["changed"] is False
    assert result["host_keys"] == {iid: [EC, ED]}
    assert result["missing"] == []


def test_an_instance_without_keys_in_its_console_is_missing(monkeypatch, capsys):
    # moto's own console output: a kernel log without cloud-init's key block.
    iid, result = run({"wait_timeout": 0}, monkeypatch, capsys, None)

    assert result.get("failed") is not True
    assert result["host_keys"] == {iid: []}
    assert result["missing"] == [iid]


def test_an_unknown_instance_fails_naming_it(monkeypatch, capsys):
    _, result = run({"instance_ids": ["i-0123456789abcdef0"]}, monkeypatch, capsys, console(ED))

    assert result["failed"] is True
    assert "i-0123456789abcdef0" in result["msg"]


class Client:
    def __init__(self, output: str):
        self.output = output

    def get_console_output(self, aws_retry: bool, InstanceId: str):  # noqa: N803 (boto3's argument name)
        return {"InstanceId": InstanceId, "Output": self.output}


@pytest.mark.parametrize("encode", [False, True], ids=["decoded by botocore", "base64 as the API sends it"])
def test_the_output_is_read_decoded_or_in_base64(encode):
    text = console(EC, ED)
    output = base64.b64encode(text.encode()).decode() if encode else text
    assert ec2_host_keys_info.read_keys(Client(output), "i-1") == [EC, ED]
