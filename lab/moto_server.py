#!/usr/bin/env python3
"""moto_server, with the lab's fidelity fixes: where moto answers differently from AWS in a way
the Ansible modules trip over, the lab makes moto answer as AWS does. Each fix names the AWS
behaviour it restores; the collection's code is the same against this, stock moto and AWS.

Usage: moto_server.py -H 127.0.0.1 -p PORT (the arguments of moto_server).
"""

from __future__ import annotations

import sys
from typing import Any

from moto.cloudfront import models as cloudfront
from moto.ec2.models import elastic_block_store
from moto.server import main


def _volumes_have_every_field() -> None:
    # AWS always returns "SnapshotId" ("" for a volume made from no snapshot) and
    # "MultiAttachEnabled"; moto leaves them out when unset, and amazon.aws.ec2_vol_info and
    # ec2_vol then fail with KeyError 'snapshot_id' / 'multi_attach_enabled'.
    original = elastic_block_store.Volume.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.snapshot_id is None:
            self.snapshot_id = ""
        if getattr(self, "multi_attach_enabled", None) is None:
            self.multi_attach_enabled = False

    elastic_block_store.Volume.__init__ = __init__


def _origins_keep_origin_access_control() -> None:
    # AWS stores an origin's OriginAccessControlId and S3OriginConfig and returns them from
    # GetDistributionConfig; moto accepts and drops them, so railsdeploy.aws.cloudfront_oac_distribution
    # would see a distribution without OAC and update it on every run.
    original = cloudfront.Origin.__init__

    def __init__(self: Any, origin: dict[str, Any]) -> None:
        original(self, origin)
        self.origin_access_control_id = origin.get("OriginAccessControlId") or ""
        if "S3OriginConfig" in origin:
            oai = (origin.get("S3OriginConfig") or {}).get("OriginAccessIdentity") or ""
            self.s3_origin_config = {"OriginAccessIdentity": oai}

    cloudfront.Origin.__init__ = __init__


def _registered_targets_wait_for_health_checks() -> None:
    # An ALB reports a newly registered target as "initial" (Elb.RegistrationInProgress) and sends it no
    # traffic until it passed HealthyThresholdCount checks; moto reports "healthy" at once, so a play that
    # waits for a target to be healthy (community.aws.elb_target target_status) would go on while the lab
    # balancer still sends it nothing. The lab balancer does the real checks and serves only targets that
    # passed them (its haproxy.cfg, see labkit.balancer.admit): for the target group it follows, a
    # registered running target that it does not serve yet is reported "initial".
    from labkit import balancer, config
    from moto.elbv2 import models as elbv2

    original = elbv2.FakeTargetGroup.health_for

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        status = original(self, target, ec2_backend)
        if status.status != "healthy":
            return status
        try:
            cfg = (config.BALANCER_DIR / balancer.CFG_NAME).read_text()
        except OSError:
            return status
        first = cfg.split("\n", 1)[0]
        if not first.endswith(f", target group {self.name}."):
            return status
        if target["Id"] in {name for name, _addr in balancer.SERVER_RE.findall(cfg)}:
            return status
        return elbv2.FakeHealthStatus(target["Id"], status.port, status.health_check_port, "initial",
                                      "Elb.RegistrationInProgress", "Target registration is in progress")

    elbv2.FakeTargetGroup.health_for = health_for


def _statements_apply_only_when_their_conditions_hold() -> None:
    # In AWS a condition on a key the request does not carry is false (unless its operator ends in IfExists,
    # or is Null), and a statement whose conditions are false does not apply: it neither allows nor denies.
    # moto knows few keys (never aws:SecureTransport or s3:prefix) and counts a condition it cannot evaluate as
    # true. So the backup bucket's "deny every request without TLS" statement denied every object request (moto
    # checks a bucket's policy on object requests even with IAM enforcement off). Here, as in AWS, a statement
    # with a condition on a key the request lacks does not apply. (The lab therefore cannot show the TLS-only
    # policy at work, nor a ListBucket limited to a prefix: README, "What the lab cannot show".)
    from moto.iam import access_control

    original = access_control.IAMPolicyStatement.is_action_permitted

    def is_action_permitted(self: Any, action: str, resource: str = "*", principal: str | None = None,
                            incoming_condition_values: dict[str, str] | None = None) -> Any:
        known = incoming_condition_values or {}
        for operator, keys in (self._statement.get("Condition") or {}).items():
            if operator.endswith("IfExists") or operator == "Null":
                continue
            if any(key not in known for key in keys):
                return access_control.PermissionResult.NEUTRAL
        return original(self, action, resource, principal, incoming_condition_values)

    access_control.IAMPolicyStatement.is_action_permitted = is_action_permitted


def _console_output_is_the_instances_console() -> None:
    # AWS returns what the instance wrote to its serial console (the most recent 64 KB, base64), nothing before
    # the instance posted any; moto returns the same sample text for every instance. A lab instance's console is
    # its container's output (lab/images/node/lab-boot prints there what cloud-init prints on EC2, such as the
    # SSH host keys made at first boot).
    import subprocess
    from datetime import UTC, datetime

    from labkit import config
    from moto.core.responses import ActionResult
    from moto.ec2.responses import general
    from moto.ec2.utils import Base64EncodedString

    def get_console_output(self: Any) -> Any:
        instance_id = self._get_param("InstanceId")
        self.ec2_backend.get_instance(instance_id)  # InvalidInstanceID.NotFound as in AWS
        found = subprocess.run(
            ["docker", "ps", "--all", "--quiet", "--filter", f"label={config.LABEL}.instance={instance_id}"],
            capture_output=True, text=True, check=False,
        ).stdout.split()
        text = ""
        if found:
            logs = subprocess.run(["docker", "logs", found[0]], capture_output=True, check=False)
            text = (logs.stdout + logs.stderr).decode(errors="replace")[-64 * 1024:]
        result = {"InstanceId": instance_id, "Timestamp": datetime.now(UTC)}
        if text:
            result["Output"] = Base64EncodedString.from_raw_string(text)
        return ActionResult(result)

    general.General.get_console_output = get_console_output


def _requests_are_counted() -> None:
    # Not a fidelity fix: it tells the lab's watcher (labctl watch) that the cloud may have changed. Every
    # request the watcher did not make itself increments a counter in config.MOTO_REQUESTS_FILE; the watcher
    # makes its pass (nodes, volumes, balancer) when the counter moved, and otherwise less often, so that an
    # idle lab costs little CPU. Only requests to the services the watcher follows count (EC2: instances, volumes,
    # security groups; Elastic Load Balancing: the target group), and of those only the ones that do not just read
    # (Describe*, Get*, List*): the nodes' log shipping (CloudWatch Logs), disk metrics and WAL archive (S3), and
    # Ansible's descriptions of instances, call all the time and would have it make a pass every second (6% of a core).
    # A request whose signature names no service (unsigned) counts.
    import io
    import threading

    from labkit import aws, config
    from moto.server import DomainDispatcherApplication

    original = DomainDispatcherApplication.__call__
    lock = threading.Lock()
    count = [0]

    def body(environ: dict[str, Any]) -> bytes:
        """The request's body, read once and put back for moto to read (none read without a Content-Length)."""
        if not environ.get("CONTENT_LENGTH"):
            return b""
        data = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        environ["wsgi.input"] = io.BytesIO(data)
        return data

    def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if aws.WATCHER_AGENT not in environ.get("HTTP_USER_AGENT", "") and aws.may_change_what_the_watcher_follows(
                environ.get("HTTP_AUTHORIZATION", ""), environ.get("QUERY_STRING", ""), lambda: body(environ)):
            with lock:
                count[0] += 1
                try:
                    config.MOTO_REQUESTS_FILE.write_text(str(count[0]))
                except OSError:
                    pass  # the lab is going down: its state directory is gone
        return original(self, environ, start_response)

    DomainDispatcherApplication.__call__ = __call__


def _requests_are_served_one_at_a_time() -> None:
    # AWS answers concurrent requests independently. moto_server serves each in a thread of its own, but moto's
    # responses share class-level state: describe_key_pairs rewrites the response transformers that every EC2 answer
    # is serialised with, and an answer serialised meanwhile failed with 500 "dictionary changed size during
    # iteration" (RunInstances, seen in CI, with the lanes of make test calling at once). The lab serves one request
    # at a time; requests are short (no call of the collection's waits inside moto).
    import threading

    from moto.server import DomainDispatcherApplication

    original = DomainDispatcherApplication.__call__
    one_at_a_time = threading.Lock()

    def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        with one_at_a_time:
            return original(self, environ, start_response)

    DomainDispatcherApplication.__call__ = __call__


_volumes_have_every_field()
_origins_keep_origin_access_control()
_registered_targets_wait_for_health_checks()
_statements_apply_only_when_their_conditions_hold()
_console_output_is_the_instances_console()
_requests_are_served_one_at_a_time()
_requests_are_counted()

if __name__ == "__main__":
    sys.exit(main())
