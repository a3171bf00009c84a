"""Materialisation follows moto through the real EC2 API: instances become node containers at their
private IPs (sshd + their own dockerd), stop/start/terminate follow, and EBS volumes are loop devices
that outlive instances, appear at their attachment device and by-id link, and go when deleted.

Each step calls ``lab.materialise()`` so as not to depend on the background watcher's timing; the
assertions poll, because the watcher may act at the same time (both passes are idempotent).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from lablib.lab import Cloud, Lab, labconfig, unique

pytestmark = pytest.mark.lab

BY_ID = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_"
BOOT_TIMEOUT = 60


def container_status(lab: Lab, name: str) -> str | None:
    c = lab.container(name)
    return c["State"]["Status"] if c else None


def container_ip(lab: Lab, name: str) -> str:
    c = lab.container(name)
    net = c["NetworkSettings"]["Networks"][labconfig.NETWORK]
    return (net.get("IPAMConfig") or {}).get("IPv4Address") or net["IPAddress"]


def wait_ssh(lab: Lab, ip: str, what: str) -> None:
    lab.wait_until(lambda: lab.ssh(ip, "true", timeout=15).returncode == 0, BOOT_TIMEOUT, what)


def wait_running(lab: Lab, instance_id: str) -> dict:
    return lab.wait_until(lambda: (i := lab.instance(instance_id))["State"]["Name"] == "running" and i,
                          30, f"{instance_id} running in moto")


def losetup_files() -> str:
    return subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True).stdout


def test_instance_lifecycle_follows_moto(lab: Lab, cloud: Cloud):
    name = unique("node")
    inst = cloud.run_instance(name)
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    wait_running(lab, iid)
    lab.materialise()

    # A container of that name runs at the instance's private IP, labelled with the instance id.
    lab.wait_until(lambda: container_status(lab, name) == "running", 30, f"container {name} running")
    c = lab.container(name)
    assert c["Config"]["Labels"][f"{labconfig.LABEL}.instance"] == iid
    assert container_ip(lab, name) == ip

    # It is a host: SSH with the lab key pair answers, its hostname is the Name tag, it has its own engine.
    wait_ssh(lab, ip, f"ssh to {name} at {ip}")
    assert lab.ssh_ok(ip, "hostname").strip() == name
    engine = lab.wait_until(
        lambda: (p := lab.ssh(ip, "sudo docker info --format '{{.Name}}|{{.ServerVersion}}'")).returncode == 0
        and p.stdout.strip(), BOOT_TIMEOUT, f"the Docker engine inside {name}", interval=1)
    engine_name, version = engine.split("|")
    assert engine_name == name, f"`docker info` on the node reports engine {engine_name!r}: not the node's own"
    assert version
    assert lab.ssh_ok(ip, "sudo docker ps -q").strip() == "", "the node's own engine starts empty"

    # Stop: the container stops and the host no longer answers SSH.
    lab.ec2.stop_instances(InstanceIds=[iid])
    lab.materialise()
    lab.wait_until(lambda: container_status(lab, name) == "exited", 90, f"container {name} stopped")
    refused = lab.ssh(ip, "true", timeout=20)
    assert refused.returncode == 255, f"ssh to a stopped instance succeeded: {refused.stdout}"

    # Start: the same container runs again at the same IP and SSH works again.
    lab.ec2.start_instances(InstanceIds=[iid])
    wait_running(lab, iid)
    assert lab.instance(iid)["PrivateIpAddress"] == ip
    lab.materialise()
    lab.wait_until(lambda: container_status(lab, name) == "running", 30, f"container {name} running again")
    assert lab.container(name)["Id"] == c["Id"], "start must restart the instance's container, not replace it"
    assert container_ip(lab, name) == ip
    wait_ssh(lab, ip, f"ssh to {name} after start")
    assert lab.ssh_ok(ip, "hostname").strip() == name

    # Terminate: the container is gone, with its Docker storage.
    lab.ec2.terminate_instances(InstanceIds=[iid])
    lab.materialise()
    lab.wait_until(lambda: container_status(lab, name) is None, 60, f"container {name} removed")
    names = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True,
                           check=True).stdout.split()
    assert name not in names
    volumes = subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True, text=True,
                             check=True).stdout.split()
    assert f"{labconfig.PREFIX}-docker-{iid}" not in volumes


def test_volume_outlives_instances(lab: Lab, cloud: Cloud):
    az = "us-west-2a"
    name_a, name_b = unique("vol-a"), unique("vol-b")
    inst = cloud.run_instance(name_a, az)
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    vol = cloud.create_volume(unique("data"), size=2, az=az)
    link = BY_ID + vol.replace("-", "")
    image = Path(labconfig.VOLUMES_DIR) / f"{vol}.img"
    wait_running(lab, iid)
    lab.materialise()
    wait_ssh(lab, ip, f"ssh to {name_a}")

    # Attach: the device and the Nitro by-id link appear in the node; the volume is a 2 GiB sparse file.
    lab.ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    lab.materialise()
    lab.wait_until(lambda: lab.ssh(ip, f"test -b /dev/sdf && test -L {link}").returncode == 0, 30,
                   f"/dev/sdf and {link} in {name_a}")
    assert lab.ssh_ok(ip, f"readlink -f {link}").strip() == "/dev/sdf"
    assert image.exists() and image.stat().st_size == 2 * 1024**3
    assert image.stat().st_blocks * 512 < image.stat().st_size, "the volume file should be sparse"
    assert str(image) in losetup_files()

    # Format, mount, write a marker, mount at boot by UUID (nofail), as a playbook would.
    lab.ssh_ok(ip, "sudo mkfs.ext4 -q -F /dev/sdf && sudo mkdir -p /mnt/data && sudo mount /dev/sdf /mnt/data"
                   " && echo itest-marker | sudo tee /mnt/data/marker >/dev/null"
                   " && echo \"UUID=$(sudo blkid -s UUID -o value /dev/sdf) /mnt/data ext4 defaults,nofail 0 2\""
                   " | sudo tee -a /etc/fstab >/dev/null")
    assert "UUID=" in lab.ssh_ok(ip, "grep /mnt/data /etc/fstab")

    # Stop + start: the node reboots, the device is back before `mount -a`, fstab mounts the volume.
    started_before = lab.container(name_a)["State"]["StartedAt"]
    lab.ec2.stop_instances(InstanceIds=[iid])
    lab.materialise()
    lab.wait_until(lambda: container_status(lab, name_a) == "exited", 90, f"container {name_a} stopped")
    lab.ec2.start_instances(InstanceIds=[iid])
    wait_running(lab, iid)
    lab.materialise()
    lab.wait_until(lambda: container_status(lab, name_a) == "running", 30, f"container {name_a} restarted")
    assert lab.container(name_a)["State"]["StartedAt"] != started_before
    wait_ssh(lab, ip, f"ssh to {name_a} after restart")
    # A nofail entry is mounted late, as on EC2 at worst: after dockerd has started its containers (lab-boot).
    lab.wait_until(lambda: lab.ssh(ip, "findmnt -n /mnt/data").returncode == 0, 30, "/mnt/data mounted at boot")
    source = lab.ssh_ok(ip, "findmnt -n -o SOURCE,FSTYPE /mnt/data || true").split()
    assert source[1:] == ["ext4"], f"/mnt/data is not mounted at boot from fstab: findmnt says {source}"
    assert lab.ssh_ok(ip, "cat /mnt/data/marker").strip() == "itest-marker"

    # Terminate: the volume (detached by the termination) keeps its loop device and file.
    lab.ec2.terminate_instances(InstanceIds=[iid])
    lab.materialise()
    lab.wait_until(lambda: container_status(lab, name_a) is None, 60, f"container {name_a} removed")
    lab.wait_until(lambda: lab.ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["State"] == "available", 30,
                   f"{vol} available after its instance terminated")
    assert image.exists()
    assert str(image) in losetup_files()

    # A new instance gets the same volume: the data is still there.
    inst_b = cloud.run_instance(name_b, az)
    iid_b, ip_b = inst_b["InstanceId"], inst_b["PrivateIpAddress"]
    wait_running(lab, iid_b)
    lab.ec2.attach_volume(VolumeId=vol, InstanceId=iid_b, Device="/dev/sdf")
    lab.materialise()
    wait_ssh(lab, ip_b, f"ssh to {name_b}")
    lab.wait_until(lambda: lab.ssh(ip_b, f"test -b /dev/sdf && test -L {link}").returncode == 0, 30,
                   f"/dev/sdf and {link} in {name_b}")
    lab.ssh_ok(ip_b, f"sudo mkdir -p /mnt/data && sudo mount {link} /mnt/data")
    assert lab.ssh_ok(ip_b, "cat /mnt/data/marker").strip() == "itest-marker"

    # Detach: the by-id link (and the device) leave the node.
    lab.ssh_ok(ip_b, "sudo umount /mnt/data")
    lab.ec2.detach_volume(VolumeId=vol, InstanceId=iid_b, Device="/dev/sdf")
    lab.materialise()
    lab.wait_until(lambda: lab.ssh(ip_b, f"test ! -e {link} && test ! -e /dev/sdf").returncode == 0, 30,
                   f"{link} and /dev/sdf gone from {name_b}")

    # Delete: the loop device is released and the file removed.
    lab.ec2.delete_volume(VolumeId=vol)
    lab.materialise()
    lab.wait_until(lambda: str(image) not in losetup_files() and not image.exists(), 30,
                   f"loop device and file of {vol} released")


IMDS = "http://169.254.169.254/latest"
# Run inside a container on the node (the test app's image has Python): the token PUT, 4 s to answer.
TOKEN_FROM_A_CONTAINER = (
    "import urllib.request\n"
    "req = urllib.request.Request('http://169.254.169.254/latest/api/token', method='PUT',\n"
    "                             headers={'X-aws-ec2-metadata-token-ttl-seconds': '60'})\n"
    "try:\n"
    "    print('token' if urllib.request.urlopen(req, timeout=4).read() else 'empty')\n"
    "except OSError as exc:\n"
    "    print('no token:', type(exc).__name__)\n"
)


def test_a_node_gets_its_roles_credentials_from_imdsv2_within_its_hop_limit(lab: Lab, cloud: Cloud):
    """What pgBackRest and the AWS SDKs on an EC2 instance do: a session token, then the instance profile's role
    credentials, from 169.254.169.254. Tokens are required (IMDSv2), and the token reply's hop limit decides
    whether a container behind the node's Docker bridge gets one: with 1 it does not, with 2 it does."""
    role, profile = unique("role"), unique("profile")
    lab.iam.create_role(RoleName=role, AssumeRolePolicyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},'
        '"Action":"sts:AssumeRole"}]}'))
    lab.iam.create_instance_profile(InstanceProfileName=profile)
    lab.iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
    try:
        name = unique("imds")
        inst = cloud.run_instance(name, IamInstanceProfile={"Name": profile}, MetadataOptions={
            "HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"})
        iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
        wait_running(lab, iid)
        lab.materialise()
        wait_ssh(lab, ip, f"ssh to {name}")

        # Without a token: 401 (IMDSv2 required). With one: the instance id and the role's STS credentials.
        status = lab.ssh_ok(ip, f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 {IMDS}/meta-data/instance-id")
        assert status == "401", f"a GET without a token answered {status}, not 401"
        token = f"$(curl -s --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' {IMDS}/api/token)"
        get = f"curl -s --max-time 5 -H \"X-aws-ec2-metadata-token: {token}\" {IMDS}/meta-data"
        assert lab.ssh_ok(ip, f"{get}/instance-id").strip() == iid
        assert lab.ssh_ok(ip, f"{get}/iam/security-credentials/").strip() == role
        creds = json.loads(lab.ssh_ok(ip, f"{get}/iam/security-credentials/{role}"))
        assert creds["Code"] == "Success" and creds["AccessKeyId"].startswith("ASIA"), creds
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", creds["Expiration"]), creds["Expiration"]

        # A container on the node is one hop further: with hop limit 1 the token reply does not reach it.
        lab.wait_until(lambda: lab.ssh(ip, "sudo docker info >/dev/null").returncode == 0, BOOT_TIMEOUT,
                       f"the Docker engine inside {name}", interval=1)
        run = (f"sudo docker run --rm --entrypoint python3 {lab.state['registry']}/testapp:1 "
               f"-c {shlex.quote(TOKEN_FROM_A_CONTAINER)}")
        assert lab.ssh_ok(ip, run, timeout=120).strip().startswith("no token"), "hop limit 1 reached a container"
        lab.ec2.modify_instance_metadata_options(InstanceId=iid, HttpPutResponseHopLimit=2)
        lab.wait_until(lambda: lab.ssh_ok(ip, run, timeout=60).strip() == "token", 30,
                       "a container's token once the hop limit is 2", interval=1)
    finally:
        lab.iam.remove_role_from_instance_profile(InstanceProfileName=profile, RoleName=role)
        lab.iam.delete_instance_profile(InstanceProfileName=profile)
        lab.iam.delete_role(RoleName=role)
