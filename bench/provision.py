"""Provision time and AWS API calls for 1 and for 8 rails nodes, each in one run, in the lab.

Each run provisions its own environment (own nodes, groups, load balancer) in the same lab, so
the two do not share work. Only the AWS side is measured (`--limit localhost`): the lab's inventory holds the
lab environment's nodes, not the benchmark's, and a run after `make demo` would otherwise configure those.
Each environment is removed again, also when its run failed (a load balancer left behind would take the lab
balancer's place). Prints `provision_seconds_1`, `provision_seconds_8`, `provision_api_calls_1`,
`provision_api_calls_8`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
from aws_call_counter import CallCounter  # noqa: E402
from labkit import aws  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def provision(env_name: str, count: int, endpoint: str) -> tuple[float, int, str]:
    with CallCounter(endpoint) as counter:
        cmd = [
            "ansible-playbook", "playbooks/provision.yml", "--limit", "localhost",
            "-e", f"aws_endpoint_url={counter.url}",
            "-e", f"railsdeploy_environment={env_name}",
            "-e", f"railsdeploy_rails_count={count}",
            "-e", f"railsdeploy_rails_name_prefix={env_name}-rails",
            "-e", f"railsdeploy_postgres_node={env_name}-pg",
            "-e", f"railsdeploy_assets_bucket=railsdeploy-{env_name}-assets",
            "-e", f"railsdeploy_backup_bucket=railsdeploy-{env_name}-backups",
            # A throwaway environment: an earlier run's final snapshots must not stop a blank volume.
            "-e", "create_data_volume=true",
        ]
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise SystemExit(f"provision of {count} node(s) failed")
    top = ", ".join(f"{k}={v}" for k, v in counter.calls.most_common(6))
    return elapsed, counter.total, top


def remove_load_balancer(env_name: str) -> None:
    """Delete the benchmark's load balancer and target group. The lab balancer follows one load balancer of the
    VPC (the first by name): a `railsdeploy-bench1` left behind would take the place of the lab's own."""
    elb = aws.client("elbv2")
    name = f"railsdeploy-{env_name}"[:32]
    for lb in elb.describe_load_balancers()["LoadBalancers"]:
        if lb["LoadBalancerName"] == name:
            elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    for tg in elb.describe_target_groups()["TargetGroups"]:
        if tg["TargetGroupName"] == name:
            elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])


def destroy(env_name: str, count: int, check: bool = True) -> None:
    """Remove the benchmark's nodes and data volume again (the lab may be shared)."""
    nodes = [f"{env_name}-rails{2001 + i}" for i in range(count)] + [f"{env_name}-pg"]
    subprocess.run(
        ["ansible-playbook", "playbooks/destroy.yml", "-e", f"railsdeploy_environment={env_name}",
         "-e", f"railsdeploy_rails_name_prefix={env_name}-rails", "-e", f"railsdeploy_postgres_node={env_name}-pg",
         "-e", f"railsdeploy_assets_bucket=railsdeploy-{env_name}-assets",
         "-e", f"railsdeploy_backup_bucket=railsdeploy-{env_name}-backups", "-e", f"nodes={','.join(nodes)}",
         "-e", f"confirm_destroy_primary={env_name}-pg", "-e", "purge_data_volumes=true"],
        cwd=REPO, capture_output=True, text=True, check=check)


def main() -> None:
    state = json.loads((REPO / "lab/.state/lab.json").read_text())
    os.environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    for count in (1, 8):
        env_name, provisioned = f"bench{count}", False
        try:
            seconds, calls, top = provision(env_name, count, state["endpoint_url"])
            provisioned = True
        finally:  # a failed run's environment too, as far as it got
            destroy(env_name, count, check=provisioned)
            remove_load_balancer(env_name)
        print(f"provision_seconds_{count}: {seconds:.1f}")
        print(f"provision_api_calls_{count}: {calls}")
        print(f"# provision {count}: most frequent calls: {top}", file=sys.stderr)


if __name__ == "__main__":
    main()
