"""postgres_primary on two lab instances in two availability zones, as the PostgreSQL pair runs it
(docs/design/standby.md, sections 2, 12, 13 and 20 step 10): the first node makes and leads the cluster alone, as
single-node mode runs it; the second is added later by one setting and one run (``postgres_primary_replica_of``): it
takes the cluster's passwords from the leader, which admits it, and Patroni clones it onto its blank data volume. A
replica of a node with no cluster yet is refused before anything changes. A row written on the leader alone is read on
the replica, which is the synchronous standby; a second run changes nothing; a server setting that needs a restart
reaches both nodes in one run, in which a change that re-creates the leader's container has it hand over to its
standby first and take the lead back after. A planned switchover hands the lead to the standby (refused from a node
that does not lead); with the roles swapped, a run changes nothing. (A failover and the old leader's rejoin: the
images' Patroni tests, and the drills on the lab's pair.) Images from the lab registry; Ansible reaches the nodes over
SSH as in production.

Run with ``.venv/bin/pytest tests/integration/lab/test_replica.py -v`` (about five minutes; needs the lab).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from lablib.lab import Cloud, Lab, unique
from lablib.playbooks import JsonRun

PLAYBOOK = Path(__file__).resolve().parent / "replica.yml"
SWITCHOVER = PLAYBOOK.with_name("switchover.yml")
ZONES = {"pg-a": "us-west-2a", "pg-b": "us-west-2b"}
PSQL = "sudo docker exec postgres psql -U app -d app -At -c"
PASSWORD = "itest-replica-password-0123456789"
PGDATA = "/mnt/pgdata/postgres/data"  # postgres_primary_mount_path's data directory


def boot(lab: Lab, cloud: Cloud, name: str) -> dict[str, str]:
    """A new instance for ``name`` in its zone with a blank data volume attached: its address and volume id."""
    inst = cloud.run_instance(unique(name), ZONES[name])
    vol = cloud.create_volume(unique(f"{name}-data"), size=1, az=ZONES[name])
    lab.ec2.attach_volume(VolumeId=vol, InstanceId=inst["InstanceId"], Device="/dev/sdf")
    return {"ip": inst["PrivateIpAddress"], "volume": vol}


def write_inventory(path: Path, lab: Lab, nodes: dict[str, dict[str, str]], replica_of: dict[str, str],
                    settings: dict[str, str] | None = None, relabel: str = "") -> Path:
    """The inventory of a cluster of ``nodes`` (all of it: a node left out is not a member); ``relabel``: a node
    whose container gets a label the others' have not (a change that re-creates only that container)."""
    hosts = {name: {"ansible_host": n["ip"], "private_ip_address": n["ip"], "postgres_primary_volume_id": n["volume"],
                    "postgres_primary_listen_address": n["ip"], "postgres_primary_replica_of": replica_of.get(name, "")}
             for name, n in nodes.items()}
    if relabel:
        hosts[relabel]["postgres_primary_labels"] = {"railsdeploy.gc.keep": "true", "itest.generation": "2"}
    group_vars = {
        **lab.ansible_vars(),
        "etcd_member_image": f"{lab.state['registry']}/etcd:3.4",
        "etcd_member_members": list(nodes),
        "etcd_member_cluster_token": "itest-replica",
        "postgres_primary_image": f"{lab.state['registry']}/postgres:15",
        "postgres_primary_mount_path": "/mnt/pgdata",
        "postgres_primary_user": "app",
        "postgres_primary_db": "app",
        "postgres_primary_password": PASSWORD,
        "postgres_primary_backup_stanza": "itest-replica",
        "postgres_primary_patroni_members": {name: n["ip"] for name, n in nodes.items()},
        "postgres_primary_etcd_hosts": [f"{n['ip']}:2379" for n in nodes.values()],
        "postgres_primary_health_timeout": 120,
        "postgres_primary_settings": settings or {},
        "postgres_primary_labels": {"railsdeploy.gc.keep": "true"},
    }
    path.write_text(yaml.safe_dump({"postgres": {"hosts": hosts, "vars": group_vars}}))
    return path


def run(ansible_playbook, inventory: Path, *args: str) -> dict[str, JsonRun]:
    proc = ansible_playbook(inventory, PLAYBOOK, *args, timeout=900)
    return {name: JsonRun(proc, name) for name in yaml.safe_load(inventory.read_text())["postgres"]["hosts"]}


def patroni(lab: Lab, ip: str, path: str) -> tuple[int, dict]:
    """Patroni's REST answer on the node at ``ip``: (HTTP status, JSON body)."""
    out = lab.ssh(ip, f"curl -s -o /tmp/patroni.json -w '%{{http_code}}' http://{ip}:8008{path}; echo; "
                      "cat /tmp/patroni.json", timeout=15).stdout.split("\n", 1)
    try:
        return int(out[0] or 0), json.loads(out[1]) if len(out) > 1 and out[1].strip() else {}
    except ValueError:
        return int(out[0] or 0), {}


def container(lab: Lab, ip: str) -> str:
    """The id of the PostgreSQL container on the node at ``ip``."""
    return lab.ssh_ok(ip, "sudo docker inspect -f '{{.Id}}' postgres").strip()


def roles(lab: Lab, ip: str) -> dict[str, str]:
    """The cluster's members and their roles as Patroni's /cluster lists them."""
    return {m["name"]: m["role"] for m in patroni(lab, ip, "/cluster")[1].get("members", [])}


def test_a_replica_is_cloned_from_the_leader_rolled_and_switched_over(lab: Lab, cloud: Cloud, ansible_playbook,
                                                                         tmp_path: Path):
    nodes = {name: boot(lab, cloud, name) for name in ZONES}
    lab.materialise()
    for name, n in nodes.items():
        lab.wait_until(lambda ip=n["ip"]: lab.ssh(ip, "true", timeout=15).returncode == 0, 90, f"ssh to {name}")
    a, b = nodes["pg-a"]["ip"], nodes["pg-b"]["ip"]
    inventory = tmp_path / "hosts.yml"

    # pg-a makes and leads the cluster, alone; a row is written.
    write_inventory(inventory, lab, {"pg-a": nodes["pg-a"]}, {})
    run(ansible_playbook, inventory)["pg-a"].ok()
    lab.ssh_ok(a, f"{PSQL} \"CREATE TABLE itest (id int PRIMARY KEY, note text); "
                  "INSERT INTO itest VALUES (1, 'kept')\"")

    # Each set to replicate the other: pg-a, first, is refused before its PostgreSQL changes (pg-b has no cluster to
    # give), and the roll stops there.
    started = lab.ssh_ok(a, "sudo docker inspect -f '{{.Id}} {{.State.StartedAt}}' postgres").strip()
    write_inventory(inventory, lab, nodes, {"pg-a": "pg-b", "pg-b": "pg-a"})
    refused = run(ansible_playbook, inventory)["pg-a"]
    assert refused.rc != 0
    # (the failed read of the leader's files, then the message)
    message = [result.get("msg", "") for _, result in refused.tasks if result.get("failed")][-1]
    assert "pg-a cannot replicate pg-b (postgres_primary_replica_of)" in message
    assert "Deploy the leader first" in message
    assert lab.ssh_ok(a, "sudo docker inspect -f '{{.Id}} {{.State.StartedAt}}' postgres").strip() == started
    assert lab.ssh(b, "sudo docker inspect postgres", timeout=15).returncode != 0

    # pg-b joins as the replica of pg-a: one run of both (pg-a admits it, etcd grows, Patroni clones pg-b).
    write_inventory(inventory, lab, nodes, {"pg-b": "pg-a"})
    for r in run(ansible_playbook, inventory).values():
        r.ok()
    lab.wait_until(lambda: lab.ssh(b, f"{PSQL} 'SELECT note FROM itest WHERE id = 1'", timeout=15).stdout.strip()
                   == "kept", 30, "the row written on the leader on the replica")
    lab.wait_until(lambda: roles(lab, a) == {"pg-a": "leader", "pg-b": "sync_standby"}, 30,
                   "pg-b the synchronous standby of pg-a")
    assert patroni(lab, b, "/replica")[0] == 200

    # The same settings again: nothing changes.
    again = run(ansible_playbook, inventory)
    assert {name: r.ok().changed_tasks() for name, r in again.items()} == {name: [] for name in ZONES}

    # One run: pg-a's container is re-created (a label here; a new image alike) - the leader hands over to its
    # synchronous standby first and takes the lead back once its new container replicates - and a server setting that
    # takes effect only at a restart reaches both nodes: pg-b, whose container stays, is restarted by the leader's run.
    before = {ip: container(lab, ip) for ip in (a, b)}
    write_inventory(inventory, lab, nodes, {"pg-b": "pg-a"}, settings={"shared_buffers": "96MB"}, relabel="pg-a")
    rolled = run(ansible_playbook, inventory)
    for r in rolled.values():
        r.ok()
    assert len([t for t in rolled["pg-a"].changed_tasks() if "hands the leader lock over" in t]) == 2
    assert container(lab, a) != before[a] and container(lab, b) == before[b]
    assert patroni(lab, a, "/primary")[1].get("role") == "master"
    for ip in (a, b):
        assert lab.ssh_ok(ip, f"{PSQL} 'SHOW shared_buffers'").strip() == "96MB", ip
    assert patroni(lab, b, "/replica")[0] == 200
    assert not patroni(lab, b, "/patroni")[1].get("pending_restart")
    lab.wait_until(lambda: roles(lab, a) == {"pg-a": "leader", "pg-b": "sync_standby"}, 60,
                   "pg-b the synchronous standby of pg-a again")

    # A planned switchover: pg-a hands over to pg-b, which leads with the rows and takes a write; pg-a follows it.
    switched = JsonRun(ansible_playbook(inventory, SWITCHOVER, "-e", "from=pg-a", "-e",
                                        "postgres_primary_switchover_to=pg-b", timeout=300), "pg-a").ok()
    assert [task for task, _ in switched.tasks if "hands the leader lock over" in task]
    assert patroni(lab, b, "/primary")[1].get("role") == "master"
    lab.ssh_ok(b, f"{PSQL} \"INSERT INTO itest VALUES (2, 'after the switchover')\"")
    lab.wait_until(lambda: patroni(lab, a, "/replica")[0] == 200, 60, "pg-a following pg-b")
    lab.wait_until(lambda: roles(lab, b) == {"pg-b": "leader", "pg-a": "sync_standby"}, 30,
                   "pg-a the synchronous standby of pg-b")
    # pg-a no longer leads: a second switchover from it is refused before any change.
    refused = JsonRun(ansible_playbook(inventory, SWITCHOVER, "-e", "from=pg-a", "-e",
                                       "postgres_primary_switchover_to=pg-b", timeout=300), "pg-a")
    assert refused.rc != 0
    message = [result.get("msg", "") for _, result in refused.tasks if result.get("failed")][-1]
    assert "pg-a does not lead the cluster" in message and "Nothing was changed" in message, message
    assert patroni(lab, b, "/primary")[1].get("role") == "master"

    # The roles swapped (pg-b, the clone, leads; pg-a replicates it): a run changes nothing. A clone that pgBackRest
    # restored (Patroni's first create_replica_method when backups are on; this test has none) keeps its
    # recovery.signal after its promotion - put here as it leaves it. It marks a restore only where Patroni does not
    # run: taken for one, pg-b's Patroni would be stopped for a plain start beside pg-a's promotion - two primaries.
    lab.ssh_ok(b, f"sudo install -o 999 -g 999 -m 0600 /dev/null {PGDATA}/recovery.signal")
    started = {ip: lab.ssh_ok(ip, "sudo docker inspect -f '{{.Id}} {{.State.StartedAt}}' postgres").strip()
               for ip in (a, b)}
    write_inventory(inventory, lab, nodes, {"pg-a": "pg-b"}, settings={"shared_buffers": "96MB"}, relabel="pg-a")
    swapped = run(ansible_playbook, inventory)
    assert {name: r.ok().changed_tasks() for name, r in swapped.items()} == {name: [] for name in ZONES}
    assert {ip: lab.ssh_ok(ip, "sudo docker inspect -f '{{.Id}} {{.State.StartedAt}}' postgres").strip()
            for ip in (a, b)} == started
    assert roles(lab, b) == {"pg-b": "leader", "pg-a": "sync_standby"}
