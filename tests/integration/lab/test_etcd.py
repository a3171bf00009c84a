"""The etcd_member role on three lab instances in three availability zones, as the PostgreSQL pair's consensus store
will run (docs/design/standby.md, section 3): a new cluster is founded and grown to three voting members; a second
run changes nothing; a member whose instance is terminated and replaced (another address, no data) is removed and
added again, and the data written before is on the new member. The deploy lock (railsdeploy.aws.deploy_lock, etcd
backend) taken through that member is still held, and refused to another run, while its instance is gone. The image
is the lab registry's etcd:3.4 (built from roles/cluster_images/files/etcd); Ansible reaches the nodes over SSH as in
production.

Run with ``.venv/bin/pytest tests/integration/lab/test_etcd.py -v`` (about two minutes; needs the lab).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from lablib.lab import Cloud, Lab, unique
from lablib.playbooks import JsonRun

PLAYBOOK = Path(__file__).resolve().parent / "etcd.yml"
LOCK_PLAYBOOK = Path(__file__).resolve().parent / "etcd_lock.yml"
ZONES = {"etcd-a": "us-west-2a", "etcd-b": "us-west-2b", "etcd-c": "us-west-2c"}
ETCDCTL = "sudo docker exec etcd etcdctl --endpoints http://127.0.0.1:2379 --command-timeout 5s"


def boot(lab: Lab, cloud: Cloud, name: str) -> tuple[str, str]:
    """A new instance for member ``name`` in its zone: (instance id, private address) once it answers SSH."""
    inst = cloud.run_instance(unique(name), ZONES[name])
    ip = inst["PrivateIpAddress"]
    lab.materialise()
    lab.wait_until(lambda: lab.ssh(ip, "true", timeout=15).returncode == 0, 90, f"ssh to {name} ({ip})")
    return inst["InstanceId"], ip


def write_inventory(path: Path, lab: Lab, addresses: dict[str, str]) -> Path:
    hosts = {name: {"ansible_host": ip, "private_ip_address": ip} for name, ip in addresses.items()}
    group_vars = {
        **lab.ansible_vars(),
        "etcd_member_image": f"{lab.state['registry']}/etcd:3.4",
        "etcd_member_members": list(addresses),
        "etcd_member_cluster_token": "itest-etcd",
    }
    path.write_text(yaml.safe_dump({"etcd": {"hosts": hosts, "vars": group_vars}}))
    return path


def members(lab: Lab, ip: str) -> dict[str, dict]:
    """The cluster's members as the member at ``ip`` lists them: name -> {peerURLs, isLearner}."""
    listed = json.loads(lab.ssh_ok(ip, f"{ETCDCTL} member list -w json"))["members"]
    return {m.get("name", ""): {"peerURLs": m.get("peerURLs", []), "isLearner": m.get("isLearner", False)}
            for m in listed}


def voting(addresses: dict[str, str]) -> dict[str, dict]:
    return {name: {"peerURLs": [f"http://{ip}:2380"], "isLearner": False} for name, ip in addresses.items()}


def run(ansible_playbook, inventory: Path) -> dict[str, JsonRun]:
    proc = ansible_playbook(inventory, PLAYBOOK, timeout=600)
    runs = {name: JsonRun(proc, name) for name in ZONES}
    next(iter(runs.values())).ok()
    return runs


def lock(ansible_playbook, inventory: Path, on: str, run_id: str, state: str = "present") -> JsonRun:
    """deploy_lock through the member on ``on``, for the deploy run ``run_id``."""
    proc = ansible_playbook(inventory, LOCK_PLAYBOOK, "--limit", on,
                            "-e", json.dumps({"lock_run_id": run_id, "lock_state": state}), timeout=120)
    return JsonRun(proc, on)


def test_a_cluster_is_founded_grown_and_mended_when_a_member_is_replaced(lab: Lab, cloud: Cloud, ansible_playbook,
                                                                       tmp_path: Path):
    instances = {name: boot(lab, cloud, name) for name in ZONES}
    addresses = {name: ip for name, (_, ip) in instances.items()}
    inventory = write_inventory(tmp_path / "hosts.yml", lab, addresses)

    # A new cluster: founded on etcd-a, etcd-b and etcd-c added as learners and promoted.
    run(ansible_playbook, inventory)
    for ip in addresses.values():
        assert members(lab, ip) == voting(addresses)
    health = lab.ssh_ok(addresses["etcd-a"], f"{ETCDCTL} endpoint health --cluster 2>&1")
    assert health.count("is healthy") == 3, health
    lab.ssh_ok(addresses["etcd-a"], f"{ETCDCTL} put /itest/written-before v1")

    # The same settings again: nothing changes.
    again = run(ansible_playbook, inventory)
    assert {name: r.changed_tasks() for name, r in again.items()} == {name: [] for name in ZONES}

    # A deploy takes the lock through etcd-c.
    assert lock(ansible_playbook, inventory, "etcd-c", "deploy-1").ok().changed == 1

    # etcd-c's instance is terminated and replaced: a new instance without its data (moto may hand it the freed
    # address again). The next run removes the old member and adds the new one; the two others kept the quorum,
    # and the new member has the data written before.
    lab.ec2.terminate_instances(InstanceIds=[instances["etcd-c"][0]])
    lab.materialise()
    # With etcd-c gone, the lock is still held: another deploy is refused, naming the holder.
    refused = lock(ansible_playbook, inventory, "etcd-a", "deploy-2")
    assert refused.rc != 0
    assert "Another deploy holds the deploy lock: deploy-1@itest (run deploy-1, release 7)" in refused.failure()
    _, addresses["etcd-c"] = boot(lab, cloud, "etcd-c")
    write_inventory(inventory, lab, addresses)
    run(ansible_playbook, inventory)
    for ip in addresses.values():
        assert members(lab, ip) == voting(addresses)
    got = lab.ssh_ok(addresses["etcd-c"], f"{ETCDCTL} get --print-value-only /itest/written-before").strip()
    assert got == "v1"

    # The deploy that holds the lock releases it through the new etcd-c; the key is gone everywhere.
    assert lock(ansible_playbook, inventory, "etcd-c", "deploy-1", "absent").ok().changed == 1
    assert lab.ssh_ok(addresses["etcd-a"], f"{ETCDCTL} get --keys-only /railsdeploy-locks/itest/deploy").strip() == ""
