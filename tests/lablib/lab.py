"""The running lab, as the lab tests and the drills reach it: its state, boto3 clients on its moto, SSH to its
nodes, labctl, polling, and per-test cloud objects that are always cleaned up."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from labkit import config as labconfig
from labkit.nodes import BACKGROUND_TAG

REPO = Path(__file__).resolve().parents[2]
LABCTL = REPO / "lab" / "labctl.py"
PYTHON = sys.executable

SSH_USER = "admin"


def labctl(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, str(LABCTL), *args], capture_output=True, text=True, timeout=timeout)


def lab_env() -> dict[str, Any]:
    proc = labctl("env", timeout=60)
    assert proc.returncode == 0, f"labctl env failed: {proc.stderr}"
    return json.loads(proc.stdout or "{}")


def ensure_lab() -> Lab:
    """The lab, brought up when this checkout's is not (``started_here`` then tells the caller to take it down)."""
    if labctl("is-up", timeout=60).returncode == 0:
        return connect(lab_env())
    proc = labctl("up", timeout=3600)
    if proc.returncode != 0:
        pytest.fail(f"labctl up failed:\n{proc.stdout}\n{proc.stderr}")
    return connect(lab_env(), started_here=True)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); fail naming ``what`` on timeout.

    Exceptions raised by the predicate count as "not yet"; the last one is shown in the failure.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last = exc
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last result: {last!r})")
        time.sleep(interval)


def docker_inspect(name: str) -> dict | None:
    """The container's `docker inspect` document, or None when there is no such container."""
    proc = subprocess.run(["docker", "inspect", "--type", "container", name], capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)[0]


def connect(env: dict[str, Any], started_here: bool = False) -> Lab:
    """A Lab whose boto3 clients talk to the lab's moto endpoint with the lab's dummy credentials."""
    boto_config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=30)

    def client(service: str):
        return boto3.client(service, endpoint_url=env["endpoint_url"], region_name=env["region"],
                            aws_access_key_id=labconfig.ACCESS_KEY, aws_secret_access_key=labconfig.SECRET_KEY,
                            config=boto_config)

    return Lab(state=env, ec2=client("ec2"), elbv2=client("elbv2"), iam=client("iam"), ssh_key=labconfig.SSH_KEY,
               started_here=started_here)


@dataclass
class Lab:
    state: dict[str, Any]
    ec2: Any
    elbv2: Any
    iam: Any
    ssh_key: Path
    started_here: bool = False
    # Markers of this session's cloud objects (name prefix, ids): their materialise problems fail tests.
    mine: set[str] = field(default_factory=lambda: {"itest-"})
    _ami: str | None = field(default=None, repr=False)

    @property
    def region(self) -> str:
        return self.state["region"]

    @property
    def vpc_id(self) -> str:
        return self.state["vpc_id"]

    @property
    def subnets(self) -> dict[str, str]:
        return self.state["subnets"]

    @property
    def balancer_url(self) -> str:
        return self.state["balancer_url"]

    def ssh_argv(self, ip: str, command: str) -> list[str]:
        """The ssh command line that runs ``command`` on the node at ``ip`` as the lab's login user."""
        return ["ssh", "-i", str(self.ssh_key), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", "-o", "BatchMode=yes",
                "-o", "LogLevel=ERROR", f"{SSH_USER}@{ip}", command]

    def ansible_vars(self) -> dict[str, str]:
        """The inventory variables that let Ansible reach the lab's nodes over SSH, as the lab inventory does."""
        return {
            "ansible_user": SSH_USER,
            "ansible_ssh_private_key_file": str(self.ssh_key),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            "ansible_python_interpreter": "/usr/bin/python3",
        }

    def ssh(self, ip: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run ``command`` on the node at ``ip`` as the lab's login user (exit 255: ssh itself failed)."""
        cmd = self.ssh_argv(ip, command)
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(cmd, 255, stdout="", stderr=f"ssh timed out: {exc}")

    def ssh_ok(self, ip: str, command: str, timeout: float = 60) -> str:
        """Run ``command`` over SSH and return its stdout; fail the test when it exits non-zero."""
        proc = self.ssh(ip, command, timeout=timeout)
        assert proc.returncode == 0, (
            f"ssh {ip} {command!r} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc.stdout

    def materialise(self) -> list[str]:
        """One synchronous materialise + balancer pass (`labctl.py materialise`); returns the problems it reported.

        Fails the test when the pass errors out, or when a problem concerns this session's objects (named
        ``itest-…`` or created through ``Cloud``). The lab is shared: other sessions' problems only warn.
        """
        proc = labctl("materialise", timeout=300)
        assert proc.returncode in (0, 1), f"labctl materialise failed ({proc.returncode}):\n{proc.stderr}"
        problems = [ln.removeprefix("problem: ") for ln in proc.stderr.splitlines() if ln.startswith("problem: ")]
        ours = [p for p in problems if any(m in p for m in self.mine)]
        assert not ours, "materialise reported problems with this test's objects:\n" + "\n".join(ours)
        for p in problems:
            warnings.warn(f"lab materialise: {p}", stacklevel=2)
        return problems

    def balancer_servers_down(self) -> set[str]:
        """The targets the lab balancer's health check has marked down (haproxy's ``show servers state``: the
        checked servers, named by target id, whose operational state is 0)."""
        proc = subprocess.run(
            ["docker", "exec", f"{labconfig.PREFIX}-balancer", "sh", "-c",
             "echo 'show servers state targets' | socat stdio /run/haproxy/admin.sock"],
            capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, f"haproxy's server state unreadable: {proc.stderr}"
        down = set()
        for line in proc.stdout.splitlines():
            fields = line.split()
            if len(fields) > 5 and not line.startswith("#") and not fields[3].endswith("-fail-open"):
                if fields[5] == "0":
                    down.add(fields[3])
        return down

    wait_until = staticmethod(wait_until)
    container = staticmethod(docker_inspect)

    def ami(self) -> str:
        if self._ami is None:
            images = self.ec2.describe_images(Owners=["amazon"])["Images"]
            debian = [i for i in images if "debian" in (i.get("Name") or "").lower()]
            self._ami = (debian or images)[0]["ImageId"]
        return self._ami

    def instance(self, instance_id: str) -> dict:
        return self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


# ---- per-test cloud objects, always cleaned up ---------------------------------------------------------


def unique(prefix: str) -> str:
    """A name of this test's own: itest-<prefix>-<6 hex digits> (the prefix without itest-, which this adds)."""
    assert not prefix.startswith("itest-"), f"unique({prefix!r}): itest- is added, not given"
    return f"itest-{prefix}-{uuid.uuid4().hex[:6]}"


class Cloud:
    """Creates lab EC2 objects for one test and removes every one of them at the end, even on failure."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.instances: list[str] = []
        self.volumes: list[str] = []
        self.load_balancers: list[str] = []
        self.target_groups: list[str] = []

    def run_instance(self, name: str, az: str = "us-west-2a", **extra) -> dict:
        """An instance named ``name``; ``extra`` goes to RunInstances (IamInstanceProfile, MetadataOptions)."""
        assert name.startswith("itest-"), "integration test instances are named itest-…"
        inst = self.lab.ec2.run_instances(
            ImageId=self.lab.ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1,
            SubnetId=self.lab.subnets[az], KeyName=self.lab.state["key_name"],
            # In the background: beside the main lane, its node takes only the CPU the main lane leaves idle.
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name},
                                                                     {"Key": BACKGROUND_TAG, "Value": "background"}]}],
            **extra,
        )["Instances"][0]
        self.instances.append(inst["InstanceId"])
        self.lab.mine.add(inst["InstanceId"])
        return inst

    def create_volume(self, name: str, size: int = 2, az: str = "us-west-2a") -> str:
        vol = self.lab.ec2.create_volume(
            Size=size, AvailabilityZone=az, Encrypted=True, VolumeType="gp3",
            TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": name}]}],
        )["VolumeId"]
        self.volumes.append(vol)
        self.lab.mine.add(vol)
        return vol

    def create_alb(self, name: str, health_check_path: str = "/", interval: int = 30, healthy: int = 5,
                   unhealthy: int = 2) -> tuple[str, str]:
        """An ALB in the lab VPC's subnets with an HTTP :80 listener forwarding to a new instance target group.

        Returns (load balancer ARN, target group ARN).
        """
        elb = self.lab.elbv2
        lb = elb.create_load_balancer(Name=name, Subnets=list(self.lab.subnets.values()), Scheme="internet-facing",
                                      Type="application", IpAddressType="ipv4")["LoadBalancers"][0]
        self.load_balancers.append(lb["LoadBalancerArn"])
        tg = elb.create_target_group(
            Name=name, Protocol="HTTP", Port=80, VpcId=self.lab.vpc_id, TargetType="instance",
            HealthCheckProtocol="HTTP", HealthCheckPath=health_check_path, HealthCheckIntervalSeconds=interval,
            HealthCheckTimeoutSeconds=max(2, min(5, interval - 1)), HealthyThresholdCount=healthy,
            UnhealthyThresholdCount=unhealthy, Matcher={"HttpCode": "200"},
        )["TargetGroups"][0]
        self.target_groups.append(tg["TargetGroupArn"])
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
        return lb["LoadBalancerArn"], tg["TargetGroupArn"]

    def cleanup(self) -> None:
        ec2, elb = self.lab.ec2, self.lab.elbv2
        errors = []
        for arn in self.load_balancers:
            try:
                for listener in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
                    elb.delete_listener(ListenerArn=listener["ListenerArn"])
                elb.delete_load_balancer(LoadBalancerArn=arn)
            except Exception as exc:  # noqa: BLE001 - keep cleaning up
                errors.append(exc)
        for arn in self.target_groups:
            try:
                elb.delete_target_group(TargetGroupArn=arn)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
        if self.instances:
            try:
                ec2.terminate_instances(InstanceIds=self.instances)
            except Exception as exc:  # noqa: BLE001 - keep cleaning up
                errors.append(exc)
        for vol in self.volumes:
            try:
                found = ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [vol]}])["Volumes"]
                if found and found[0].get("Attachments"):
                    ec2.detach_volume(VolumeId=vol, Force=True)
                if found:
                    ec2.delete_volume(VolumeId=vol)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
        if self.instances or self.volumes or self.load_balancers:
            labctl("materialise", timeout=300)
        assert not errors, f"cleaning up the test's cloud objects failed: {errors}"


