"""The failure drills, in order, on one running system (tests/drills/conftest.py brings it up).

Each drill breaks something while lab/loadgen.py sends requests through the lab balancer, lets the system (or
the documented playbook) recover, asserts what a user relies on - the app serves again on every node, no row is
lost, a release keeps serving - and reports its figures in one line. `make drills` writes them to docs/drills.md.
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from drillkit import (
    PG_CONTAINER,
    PG_DB,
    PG_USER,
    REPO,
    AppWrites,
    Background,
    Node,
    System,
    Writer,
    app_writes,
    load,
    playbook,
    playbook_ok,
    refusing_registry,
    shell_quote,
    wait_for,
)

RETAINED = "/var/lib/railsdeploy/releases/retained"  # roles/docker_gc: the releases the clean-up keeps
OLD_IMAGES, OLD_IMAGE_MB = 12, 20


def _s(seconds: float) -> float:
    return round(seconds, 1)


def _outage(result, since: float) -> float:
    """Seconds from ``since`` to the last failed request (0 when none failed after it)."""
    return _s(max(0.0, (result.last_failure or since) - since))


def _none_lost(system: System, writes: AppWrites) -> str:
    """Every write the app acknowledged is in the database: "0/<acknowledged>" (else the drill fails)."""
    lost = set(writes.acked) - system.notes(writes)
    assert not lost, f"{len(lost)} of {len(writes.acked)} acknowledged writes are missing: {sorted(lost)[:10]}"
    return f"0/{len(writes.acked)}"


def _caught_up(system: System, writes: AppWrites, node: Node) -> int:
    """``node`` (the standby) holds as many notes of ``writes`` as the leader, those written while it was gone too:
    how many (else the drill fails)."""
    held, leader = len(system.notes(writes, node=node)), len(system.notes(writes))
    assert held == leader, f"{node.name} holds {held} of this drill's notes, the leader {leader}"
    return held


def _degraded(status, name: str) -> None:
    """status.yml's output reports the cluster degraded without the node ``name`` (else the drill fails)."""
    degraded = re.search(r"DEGRADED: ([^(]*) not in the cluster", " ".join(status.output.split()))
    assert degraded and name in degraded.group(1), (
        f"status.yml did not report the cluster degraded without {name}:\n{status.tail()}")


def _figures(result, writes: AppWrites, since: float, until: float | None = None) -> dict:
    """The load's figures: requests (reads of /up) and writes through the app, failed ones, and the write outage from
    ``since`` (counting the failures before ``until``)."""
    return {"requests": result.total, "failed": result.failed, "writes": len(writes.acked) + len(writes.failed),
            "writes_failed": len(writes.failed), "write_outage_s": _s(writes.outage(since, until))}


def _took_over(system: System, old: Node, writes: AppWrites, since: float, timeout: float = 90) -> float:
    """Seconds from ``since`` until another node than ``old`` leads and a write through the app was acknowledged
    after that."""
    wait_for(lambda: system.new_leader(old), timeout, f"a PostgreSQL node other than {old.name} to lead")
    elected = time.time()
    wait_for(lambda: writes.acked and max(writes.acked.values()) > elected, timeout,
             "a write through the app acknowledged after the election")
    return elected - since


@pytest.mark.drill(1, "The leader cut off from the standby and the witness (packets from them dropped, its processes "
                      "running): it stops taking writes, the standby takes over - no second leader, no acknowledged "
                      "write lost; when the network returns the old leader rejoins as its standby")
def test_leader_cut_off(system: System, report):
    leader, standby = system.primary(), system.standby()
    peers = [standby, *system.nodes("witness").values()]
    rails = system.rails()
    before = {name: system.running_containers(node) for name, node in rails.items()}
    direct_write = (f"sudo docker exec {PG_CONTAINER} psql -X -tA -v ON_ERROR_STOP=1 -U {PG_USER} -d {PG_DB} "
                    f"-c \"INSERT INTO notes (text) VALUES ('drill1 to the old leader')\"")

    with (load(system.balancer_url + "/up") as result,
          app_writes(system.balancer_url, f"drill1-{int(time.time())}") as writes):
        cut = time.time()
        system.cut_off(leader, peers)
        try:
            # Patroni on the old leader cannot renew its lock: it demotes PostgreSQL before the lock expires.
            demoted = wait_for(lambda: system.patroni_role(leader) not in ("master", "primary"), 60,
                               f"{leader.name} to stop leading while cut off")
            elected = _took_over(system, leader, writes, cut)
            written_again = time.time()
            refused = system.lab.ssh(leader.ip, direct_write, timeout=30)
            old_role = system.patroni_role(leader)
        finally:
            system.cut_off(leader, peers, cut=False)
        rejoined = wait_for(system.pair_healthy, 180, f"{leader.name} to stream again as the synchronous standby")

    assert refused.returncode != 0, f"a write straight to the cut-off old leader succeeded: {refused.stdout}"
    assert old_role not in ("master", "primary"), f"{leader.name} still called itself {old_role} while cut off"
    assert system.primary().name == standby.name, f"{standby.name} does not lead after the network returned"
    after = {name: system.running_containers(node) for name, node in rails.items()}
    assert after == before, f"containers on the rails nodes were restarted or replaced: {before} -> {after}"
    rows_lost = _none_lost(system, writes)
    report(**_figures(result, writes, cut, written_again), leader=f"{leader.name}->{standby.name}",
           demoted_s=_s(demoted), elected_s=_s(elected),
           direct_write_refused=" ".join(refused.stderr.split())[-90:] or f"exit {refused.returncode}",
           rejoined_after_heal_s=_s(rejoined), rows_lost=rows_lost,
           app_restarts=0)


@pytest.mark.drill(2, "The leader's instance stopped, then started: the standby takes over; at boot the old leader "
                      "rejoins as its standby by itself, on its volume, cleanly - no playbook run")
def test_leader_instance_stop_start(system: System, report):
    leader, standby = system.primary(), system.standby()

    with (load(system.balancer_url + "/up") as result,
          app_writes(system.balancer_url, f"drill2-{int(time.time())}") as writes):
        stopped = time.time()
        system.lab.ec2.stop_instances(InstanceIds=[leader.instance_id])
        system.materialise()
        elected = _took_over(system, leader, writes, stopped)
        started = time.time()
        system.lab.ec2.start_instances(InstanceIds=[leader.instance_id])
        system.materialise()
        booted = wait_for(lambda: system.answers_ssh(system.postgres()[leader.name]), 120,
                          f"{leader.name} to answer SSH again")
        # Nobody runs a playbook: the boot starts PostgreSQL once the data volume is mounted
        # (railsdeploy-postgres.service), and Patroni makes it the new leader's standby.
        wait_for(system.pair_healthy, 180, f"{leader.name} to stream again as the synchronous standby")
        rejoined = time.time() - started

    restarted = system.postgres()[leader.name]
    assert restarted.instance_id == leader.instance_id
    assert system.primary().name == standby.name, f"{standby.name} does not lead after {leader.name} came back"
    # The shutdown stopped PostgreSQL cleanly (the role's unit, before dockerd), and at boot it started only once
    # the data volume was mounted: on the volume, not on an empty directory of the root disk.
    assert not (unclean := system.crash_recovery(restarted)), f"the start after the boot was not clean: {unclean}"
    device, mountpoint = system.pgdata_filesystem(restarted)
    assert device.startswith("/dev/") and mountpoint != "/", (
        f"after the boot PostgreSQL's data directory is on {device} at {mountpoint}, not on the data volume")
    rows_lost = _none_lost(system, writes)
    report(**_figures(result, writes, stopped), leader=f"{leader.name}->{standby.name}", elected_s=_s(elected),
           boot_s=_s(booted), rejoined_after_start_s=_s(rejoined), crash_recovery=0,
           pgdata_on=f"{device}:{mountpoint}", rows_lost=rows_lost)


@pytest.mark.drill(3, "A zone lost: the leader's instance and the rails node in its zone terminated at once, under "
                      "load. The standby takes over (RTO: to the first write through the app; rows acknowledged and "
                      "lost), the balancer stops sending to the dead rails node, status.yml shows the cluster "
                      "degraded; one provision.yml replaces both instances, deploy_postgres.yml has the new one "
                      "rejoin as the standby on its kept volume, caught up, and deploy_rails.yml --limit deploys the "
                      "new rails node - no manual step, no request failed once the balancer dropped the dead node")
def test_zone_lost_and_replaced(system: System, report):
    leader, standby = system.primary(), system.standby()
    volume = system.data_volume(leader.name)
    subnet = system.lab.instance(leader.instance_id)["SubnetId"]
    rails = system.rails()
    # The rails node in the leader's zone (subnet) goes with it: the other zone's keeps serving.
    in_zone = [n for n in rails.values() if system.lab.instance(n.instance_id)["SubnetId"] == subnet]
    victim = (in_zone or list(rails.values()))[-1]
    survivors = {name: node for name, node in rails.items() if name != victim.name}
    release = system.serving(next(iter(survivors.values())))
    containers = {name: system.running_containers(node) for name, node in survivors.items()}

    with (load(system.balancer_url + "/up") as result, system.placeholder(subnet) as placeholder,
          app_writes(system.balancer_url, f"drill3-{int(time.time())}") as writes):
        terminated = time.time()
        system.lab.ec2.terminate_instances(InstanceIds=[leader.instance_id, victim.instance_id])
        system.materialise()
        elected = _took_over(system, leader, writes, terminated)
        written_again = time.time()  # a write after the election was acknowledged: later failures are not the outage
        # The balancer has stopped sending to the dead rails node (and /up answers again: it queries the database)
        # once answers in a row all succeed.
        wait_for(lambda: system.balancer_steady(40), 120, "the balancer to stop sending to the terminated rails node")
        steady = time.time()
        status = playbook_ok("status.yml", what=f"status.yml with {leader.name} and {victim.name} terminated")
        # AWS hands out private addresses at random, moto the lowest free one: another instance takes the old
        # address first, so that the replacement comes up on a new one, as it would in AWS.
        placeholder(leader.ip)
        provision = playbook_ok("provision.yml", what=f"provision.yml replacing {leader.name} and {victim.name}")
        deploy = playbook_ok("deploy_postgres.yml", what=f"deploy_postgres.yml on the new {leader.name}")
        rejoined = wait_for(system.pair_healthy, 120, f"the new {leader.name} to stream as the synchronous standby")
        deployed = playbook_ok("deploy_rails.yml", "--limit", victim.name, "-e", f"rails_app_release={release}",
                               what=f"deploy_rails.yml to the new {victim.name}")
        new_rails = system.rails()[victim.name]
        wait_for(lambda: system.serving(new_rails) == release, 60,
                 f"the new {victim.name} to serve release {release}")
        tg = system.target_group_arn()
        healthy = wait_for(lambda: system.healthy_targets(tg) == {n.instance_id for n in system.rails().values()},
                           120, "every rails node to be a healthy target of the load balancer")

    _degraded(status, leader.name)
    new = system.postgres()[leader.name]
    assert new.instance_id != leader.instance_id, f"{leader.name} is still {leader.instance_id}: it was not replaced"
    assert new.ip != leader.ip, f"the replacement came up on the old address {new.ip}: the drill proves less"
    assert new_rails.instance_id != victim.instance_id, f"{victim.name} is still {victim.instance_id}"
    assert system.primary().name == standby.name, f"{standby.name} does not lead after {leader.name} was replaced"
    kept = system.data_volume(leader.name)
    assert kept["VolumeId"] == volume["VolumeId"], f"{leader.name} has the volume {kept['VolumeId']}, not its own"
    attached = [a["InstanceId"] for a in kept.get("Attachments", [])]
    assert attached == [new.instance_id], f"the data volume is attached to {attached}, not to {new.instance_id}"
    # The surviving rails nodes' database proxies follow the leader by Patroni's health check: nothing on them was
    # re-created. (A worker the configuration puts there may start: the drills run without a worker node, so after
    # `make test`'s rails scenario destroyed it, deploy_postgres.yml's pass over the app's nodes starts the jobs worker
    # on the rails nodes.)
    after = {name: {c: started for c, started in system.running_containers(node).items() if c in containers[name]}
             for name, node in survivors.items()}
    assert after == containers, (
        f"containers on the rails nodes were re-created to follow the leader: {containers} -> {after}")
    assert (result.last_failure or 0) <= steady, (
        f"requests failed after the balancer had dropped {victim.name} and the standby led: the last "
        f"{_s(result.last_failure - steady)} s after, during the replacement")
    rows_lost = _none_lost(system, writes)
    _caught_up(system, writes, new)
    acked_before = sum(1 for at in writes.acked.values() if at < terminated)
    report(**_figures(result, writes, terminated, written_again), elected_s=_s(elected),
           rows_acked_before_termination=acked_before, rows_lost=rows_lost,
           leader=f"{leader.name}->{standby.name}", balancer_steady_s=_s(steady - terminated), status_degraded=1,
           provision_s=_s(provision.seconds), deploy_postgres_s=_s(deploy.seconds),
           rejoined_after_deploy_s=_s(rejoined),
           deploy_rails_s=_s(deployed.seconds), healthy_after_deploy_s=_s(healthy), failed_while_replacing=0,
           instances=f"{leader.instance_id}->{new.instance_id}, {victim.instance_id}->{new_rails.instance_id}",
           address=f"{leader.ip}->{new.ip}", volume=f"{volume['VolumeId']} kept and moved",
           rails_containers_recreated=0, nodes_serving=f"{len(system.rails())}/{len(rails)}")


@pytest.mark.drill(5, "A rails node rebooted: every container comes back by itself")
def test_rails_node_reboot(system: System, report):
    node = list(system.rails().values())[0]
    before = system.running_containers(node)

    with load(system.balancer_url + "/up") as result:
        rebooted = time.time()
        # A reboot of the instance is a restart of its lab container: init stops dockerd (and the containers),
        # and at boot dockerd starts again with the node.
        subprocess.run(["docker", "restart", "--time", "60", system.node_container(node)], check=True,
                       capture_output=True, timeout=180)
        wait_for(lambda: system.answers_ssh(node), 120, f"{node.name} to answer SSH after the reboot")
        ssh_back = time.time() - rebooted
        wait_for(lambda: set(system.running_containers(node)) >= set(before), 120,
                 f"every container that ran on {node.name} to run again: {sorted(before)}")
        containers_back = time.time() - rebooted
        wait_for(lambda: system.node_status(node) == 200, 120, f"{node.name} to answer /up again")
        serving = time.time() - rebooted
        system.wait_served(timeout=120)
        steady = time.time() - rebooted
        time.sleep(2)

    after = system.running_containers(node)
    restarted = [name for name in before if after.get(name, before[name]) != before[name]]
    assert sorted(restarted) == sorted(before), (
        f"containers that did not restart with the node: {set(before) - set(restarted)}")
    report(requests=result.total, failed=result.failed, error_seconds=result.error_seconds,
           ssh_back_s=_s(ssh_back), containers_back_s=_s(containers_back), node_serving_s=_s(serving),
           balancer_steady_s=_s(steady), last_failure_after_reboot_s=_outage(result, rebooted),
           containers_back=f"{len(restarted)}/{len(before)} ({', '.join(sorted(before))})", started_by_hand=0)


HOLDER = "drill7-interrupted@ci"  # RAILSDEPLOY_DEPLOYER of the deploy that is killed


@pytest.mark.drill(7, "A deploy killed mid-roll; the next deploy finds the stale lock; after its release it completes")
def test_interrupted_deploy(system: System, report, tmp_path):
    nodes = list(system.rails().values())
    current = system.serving(nodes[0])
    target = "2" if current != "2" else "1"

    with load(system.balancer_url + "/version") as result:
        started = time.time()
        interrupted = Background(tmp_path / "interrupted.log", "deploy_rails.yml", "--limit", "rails",
                                 "-e", f"rails_app_release={target}", env={"RAILSDEPLOY_DEPLOYER": HOLDER})
        wait_for(lambda: system.serving(nodes[0]) == target, 300,
                 f"{nodes[0].name} to switch to release {target} (the deploy's first batch)")
        interrupted.kill()
        killed_after = time.time() - started
        serving_after_kill = {n.name: system.serving(n) for n in nodes}
        assert all(serving_after_kill.values()), (
            f"a node serves nothing after the interrupted deploy: {serving_after_kill}")
        assert len(set(serving_after_kill.values())) > 1, (
            f"the deploy was not interrupted mid-roll (every node serves {serving_after_kill}): the drill proves less")

        # The next deploy, a restore, a deploy of PostgreSQL (which would restart it under the migrations), a seed
        # and provisioning (which changes the target group and DNS) are each refused by the lock, before any change;
        # run side by side (each only reads).
        volume = system.data_volume(system.primary().name)["VolumeId"]
        postgres_started = system.running_containers(system.primary())
        refused = {"deploy_rails.yml": ["-e", f"rails_app_release={target}"],
                   "restore_postgres.yml": ["-e", "restore_target_time=latest", "-e", "confirm_restore=lab"],
                   "deploy_postgres.yml": [], "seed.yml": ["-e", f"rails_app_release={target}"], "provision.yml": []}
        with ThreadPoolExecutor(max_workers=len(refused)) as pool:
            blocked = dict(zip(refused, pool.map(lambda item: playbook(item[0], *item[1]), refused.items()),
                               strict=True))
        named = ["Another deploy holds the deploy lock", HOLDER, " ago", "playbooks/unlock.yml"]
        for name, run in blocked.items():
            assert run.rc != 0 and all(words in run.output for words in named), (
                f"{name} did not stop at the stale lock naming its holder, its age and how to release it "
                f"({[w for w in named if w not in run.output]} missing):\n{run.tail()}")
        assert system.data_volume(system.primary().name)["VolumeId"] == volume, (
            "the refused restore replaced the data volume")
        assert system.running_containers(system.primary()) == postgres_started, (
            "a playbook refused by the lock restarted PostgreSQL")
        unlock = playbook_ok("unlock.yml", what="releasing the stale lock")
        assert HOLDER in unlock.output, f"the unlock did not name the lock it released:\n{unlock.tail()}"
        completed = playbook_ok("deploy_rails.yml", "-e", f"rails_app_release={target}",
                                what="the deploy after releasing the lock")
        serving = {n.name: system.serving(n) for n in nodes}
        time.sleep(2)

    assert set(serving.values()) == {target}, f"after the completed deploy the nodes serve {serving}"
    assert result.failed == 0, f"{result.failed} requests failed around the interrupted deploy"
    report(requests=result.total, failed=result.failed, killed_after_s=_s(killed_after),
           serving_after_kill=" ".join(f"{k}:{v}" for k, v in serving_after_kill.items()),
           refused_naming_lock=1, restore_refused_naming_lock=1, postgres_seed_provision_refused_naming_lock=3,
           completed_deploy_s=_s(completed.seconds),
           releases_seen="/".join(sorted(result.bodies())), serving_after=f"{target} on {len(serving)}/{len(nodes)}")


@pytest.mark.drill(6, "Disk pressure: many old images on a node; the scheduled clean-up keeps the retained releases")
def test_disk_pressure_cleanup(system: System, report):
    node = list(system.rails().values())[0]

    def retained_releases() -> list[str]:
        return [line.strip() for line in system.ssh(node, f"sudo cat {RETAINED}").splitlines()
                if line.strip() and not line.startswith("#")]

    retained = retained_releases()
    if len(retained) < 2:
        # What the drill needs: a release to roll back to beside the serving one (drill 7's deploys leave it).
        other = "2" if system.serving(node) != "2" else "1"
        playbook_ok("deploy_rails.yml", "-e", f"rails_app_release={other}", what="a second retained release")
        retained = retained_releases()
    assert len(retained) >= 2, f"{RETAINED} on {node.name} lists {retained}, not a serving and an earlier release"
    repository = retained[0].rsplit(":", 1)[0]
    running = system.running_containers(node)

    used_before = int(system.ssh(node, "sudo du -sm /var/lib/docker | cut -f1"))
    system.ssh(node, (
        f"for i in $(seq 1 {OLD_IMAGES}); do d=$(mktemp -d); head -c {OLD_IMAGE_MB}M /dev/urandom > $d/blob; "
        f"tar -C $d -c blob | sudo docker import - {repository}:drill-old-$i > /dev/null; rm -rf $d; done"),
        timeout=600)
    used_full = int(system.ssh(node, "sudo du -sm /var/lib/docker | cut -f1"))
    # The job exactly as cron runs it (fields after minute, hour, day, month, weekday and user).
    cron = system.ssh(node, "sudo cat /etc/cron.d/railsdeploy-docker-gc")
    job = [line.split(None, 6)[6] for line in cron.splitlines() if line.strip() and line[0].isdigit()]
    assert len(job) == 1, f"expected one clean-up job in /etc/cron.d/railsdeploy-docker-gc:\n{cron}"

    with load(system.balancer_url + "/up") as result:
        started = time.time()
        system.ssh(node, f"sudo sh -c {shell_quote(job[0])}", timeout=600)
        cleanup_s = time.time() - started
        time.sleep(2)

    used_after = int(system.ssh(node, "sudo du -sm /var/lib/docker | cut -f1"))
    images = set(system.ssh(node, "sudo docker images --format '{{.Repository}}:{{.Tag}}'").split())
    old_left = sorted(i for i in images if ":drill-old-" in i)
    assert not old_left, f"the clean-up left old images: {old_left}"
    missing = [ref for ref in retained if ref not in images]
    assert not missing, f"the clean-up removed retained releases: {missing}"
    assert system.running_containers(node) == running, "the clean-up touched running containers"
    assert result.failed == 0, f"{result.failed} requests failed during the clean-up"
    report(old_images=OLD_IMAGES, added_mb=used_full - used_before, freed_mb=used_full - used_after,
           cleanup_s=_s(cleanup_s), retained_kept=f"{len(retained) - len(missing)}/{len(retained)}",
           retained=" ".join(r.rsplit(":", 1)[1] for r in retained), requests=result.total, failed=result.failed)


UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port


def _bad_input_cases(system: System, registry: str, lab_dir: str) -> list[tuple[str, list[str], list[str], dict]]:
    """(playbook, arguments, words the refusal must contain, extra environment) - for every playbook: wrong or
    missing variables, unknown hosts in --limit, a wrong image tag, a registry that refuses login, an
    unreachable AWS endpoint (for the modules, and for the inventory)."""
    railsdeploy_registry = system.lab.state["registry"]
    release = system.serving(list(system.rails().values())[0])
    primary = system.primary().name  # the leader, which the drills before may have moved
    unreachable_inventory = {"RAILSDEPLOY_LAB_DIR": lab_dir}
    return [
        ("provision.yml", ["-e", "railsdeploy_rails_count=-1"], ["railsdeploy_rails_count", "-1"], {}),
        ("provision.yml", ["-e", f"aws_endpoint_url={UNREACHABLE}"], [UNREACHABLE], {}),
        ("provision.yml", ["--limit", "rails9999"], ["rails9999", "no hosts"], {}),
        ("destroy.yml", [], ["Name the nodes to destroy"], {}),
        ("destroy.yml", ["-e", "nodes=rails9999"], ["rails9999", "nothing was changed"], {}),
        ("destroy.yml", ["-e", f"nodes={primary}"], [f"confirm_destroy_primary={primary}"], {}),
        ("delete_dns_record.yml", [], ["Name the record"], {}),
        ("switchover_postgres.yml", [], ["Name the node that takes over", "-e to="], {}),
        ("switchover_postgres.yml", ["-e", f"to={primary}"], [f"{primary} leads already"], {}),
        ("users.yml", ["-e", json.dumps({"railsdeploy_admins": [
            {"name": "eve", "ssh_keys": ["ssh-ed25519 not-a-key"], "sudo": "passwordless", "state": "present"}]})],
         ["eve"], {}),
        ("users.yml", ["--limit", "rails9999"], ["rails9999", "no hosts"], {}),
        ("deploy_postgres.yml", ["-e", "railsdeploy_postgres_password="], ["railsdeploy_postgres_password"], {}),
        ("deploy_postgres.yml", ["-e", f"railsdeploy_postgres_image={railsdeploy_registry}/postgres:no-such-tag"],
         ["postgres:no-such-tag", "cannot be pulled"], {}),
        ("deploy_postgres.yml", ["-e", f"aws_endpoint_url={UNREACHABLE}"], [UNREACHABLE], {}),
        ("deploy_postgres.yml", ["-e", "railsdeploy_etcd_image="], ["etcd_member_image is not set",
                                                                   "railsdeploy_etcd_image"], {}),
        ("seed.yml", [], ["rails_app_release is not set"], {}),
        ("seed.yml", ["-e", "rails_app_release=no-such-tag", "-e", "seed_force=true"],
         ["testapp:no-such-tag", "cannot be pulled"], {}),
        ("deploy_rails.yml", [], ["rails_app_release is not set"], {}),
        ("deploy_rails.yml", ["-e", "rails_app_unlock=true"], ["playbooks/unlock.yml", "Nothing was changed"], {}),
        ("deploy_rails.yml", ["-e", "rails_app_release=no-such-tag"], ["testapp:no-such-tag", "cannot be pulled"], {}),
        ("deploy_rails.yml", ["-e", json.dumps({"rails_app_release": "bad tag!"})], ["not a valid image tag"], {}),
        ("deploy_rails.yml", ["--limit", "rails9999", "-e", f"rails_app_release={release}"],
         ["rails9999", "no hosts"], {}),
        # A worker for the worker nodes, which the drills' system has none of (the rails scenario refuses one pinned
        # to a rails node).
        ("deploy_rails.yml", ["-e", f"rails_app_release={release}", "-e", json.dumps({
            "rails_app_workers": [{"name": "clock", "command": ["bin/jobs"], "tier": "worker"}]})],
         ["clock runs on the worker nodes (tier worker), but the inventory has none", "railsdeploy_worker_count",
          "Nothing was changed"], {}),
        # A deploy that re-creates a proxy drains its node from the target group: AWS must answer, before any change
        # (a deploy that needs no AWS call runs without it).
        ("deploy_rails.yml", ["-e", f"rails_app_release={release}", "-e", f"aws_endpoint_url={UNREACHABLE}",
                              "-e", f"rails_app_proxy_image={railsdeploy_registry}/haproxy:2.6-lab2"],
         [UNREACHABLE], {}),
        ("deploy_rails.yml", ["-e", f"rails_app_release={release}"], [UNREACHABLE], unreachable_inventory),
        ("build.yml", ["-e", json.dumps({"rails_app_release": "bad tag!"})], ["not a valid Docker tag"], {}),
        ("build.yml", ["-e", "rails_app_release=drill8", "-e", f"rails_image_push_repository={registry}/testapp",
                       "-e", f"rails_image_registry_url={registry}", "-e", "rails_image_registry_username=drill",
                       "-e", "rails_image_registry_password=wrong-password"], [registry, "401"], {}),
        ("site.yml", [], ["rails_app_release is not set"], {}),
        ("backup_postgres.yml", ["-e", "backup_type=weekly"], ["weekly"], {}),
        ("restore_postgres.yml", [], ["restore_target_time is not set"], {}),
        ("restore_postgres.yml", ["-e", "restore_target_time=yesterday", "-e", "confirm_restore=lab"],
         ["'yesterday' is not a time in ISO 8601 UTC"], {}),
        ("restore_postgres.yml", ["-e", "restore_target_time=2999-01-01T00:00:00Z", "-e", "confirm_restore=lab"],
         ["2999-01-01T00:00:00Z is in the future"], {}),
        ("restore_postgres.yml", ["-e", "restore_target_time=latest"], ["-e confirm_restore=lab"], {}),
        ("restore_postgres.yml", ["-e", "restore_target_time=2000-01-01T00:00:00Z", "-e", "confirm_restore=lab"],
         ["is before the oldest time a restore can reach"], {}),
        ("restore_postgres.yml", ["-e", "restore_target_time=20000101-000000F", "-e", "confirm_restore=lab"],
         ["There is no backup 20000101-000000F"], {}),
        # A missing bucket is refused by the controller before any change; an empty repository (no backup: the
        # archive never worked there) after the lock, without rewriting the running server's archive configuration.
        ("deploy_postgres.yml", ["-e", "railsdeploy_backup_bucket=lab-no-such-backups"],
         ["s3://lab-no-such-backups does not exist"], {}),
        ("restore_postgres.yml", ["-e", "restore_target_time=latest", "-e", "confirm_restore=lab",
                                  "-e", "railsdeploy_backup_bucket=lab-no-such-backups"],
         ["s3://lab-no-such-backups does not exist"], {}),
        ("restore_postgres.yml", ["-e", "restore_target_time=latest", "-e", "confirm_restore=lab",
                                  "-e", "railsdeploy_postgres_backup_prefix=drill8-empty"],
         ["drill8-empty holds no backup"], {}),
    ]


def _refusal(output: str) -> str:
    """The message a user reads: Ansible's error line (the failed task's msg), with the inventory plugin's cause
    when the inventory could not be read; paths of this checkout shown relative to it."""
    lines = output.splitlines()
    # The last error (an error an Ansible rescue turned into a clearer one comes before it), up to its Origin.
    starts = [i for i, ln in enumerate(lines) if ln.startswith(("[ERROR]", "ERROR!"))]
    if not starts:
        return lines[-1][:300] if lines else ""
    message = []
    for ln in lines[starts[-1]:]:
        if ln.startswith("Origin:") or (message and not ln.strip()):
            break
        message.append(ln.strip())
    text = " ".join(message)
    text = re.sub(r"^(\[ERROR\]:|ERROR!)\s*(Task failed: (Module|Action) failed: )?", "", text)
    if "failed to parse inventory" in text:
        cause = next((ln.split("plugin: ", 1)[1] for ln in lines if "aws_ec2' plugin: " in ln), "")
        text = f"{text}: {cause}"
    return text.replace(str(REPO) + "/", "").strip()[:300]


# Playbooks that take the deploy lock (deploy_postgres.yml ends with a deploy_rails.yml pass; restore_postgres.yml
# holds it while it checks the repository): their cases that get as far as the lock run one after another, beside
# the others, so that no case is refused by another's lock instead of its own bad input. Cases refused by the first
# play's checks of the command line (the words below), before any lock, run in a lane of their own.
LOCKING = {"deploy_rails.yml", "seed.yml", "deploy_postgres.yml", "site.yml", "restore_postgres.yml",
           "switchover_postgres.yml"}
BEFORE_THE_LOCK = ("is not set", "not a valid image tag", "is not a time", "is in the future", "-e confirm_restore=",
                   "does not exist", "cannot be pulled", "Name the node that takes over", "leads already",
                   "would run nowhere")


def _lanes(cases: list) -> list[list]:
    """The sweep's lanes, run side by side: the cases that may take the deploy lock, one after another (two at once
    would refuse each other); the others (refused before the lock, or by a playbook that takes none) shared by two."""
    locking = [c for c in cases if c[0] in LOCKING and not any(w in words for words in c[2] for w in BEFORE_THE_LOCK)]
    others = [c for c in cases if c not in locking]
    return [locking, others[0::2], others[1::2]]


@pytest.mark.drill(8, "Bad input for every playbook: a refusal naming the cause, nothing a user has changed")
def test_bad_input_sweep(system: System, report, tmp_path):
    lab_dir = tmp_path / "lab"
    (lab_dir / ".state").mkdir(parents=True)
    (lab_dir / ".state" / "lab.json").write_text(json.dumps(dict(system.lab.state, endpoint_url=UNREACHABLE)))
    problems, rows = [], []
    with refusing_registry() as registry:
        cases = _bad_input_cases(system, registry, str(lab_dir))
        lanes = _lanes(cases)
        # A steady system first: every rails node a healthy target (a node may still be joining after a deploy).
        tg = system.target_group_arn()
        wait_for(lambda: system.healthy_targets(tg) == {n.instance_id for n in system.rails().values()}, 120,
                 "every rails node to be a healthy target before the sweep")
        before = system.fingerprint()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
            results = list(pool.map(lambda lane: [playbook(n, *a, env=e, timeout=600) for n, a, _w, e in lane], lanes))
        sweep_s = time.monotonic() - started
        after = system.fingerprint()
    # Runs side by side share one before/after comparison: a change is reported for the sweep, not one case.
    changed = sorted(k for k in before if before[k] != after[k])
    done = [pair for lane, runs in zip(lanes, results, strict=True) for pair in zip(lane, runs, strict=True)]
    for (name, args, words, env), run in done:
        message = _refusal(run.output)
        missing = [w for w in words if w not in run.output]
        shown = " ".join(args) + (" (inventory: moto unreachable)" if env else "")
        rows.append((name, shown or "(none)", message, "yes" if not changed else f"NO: the sweep changed {changed}"))
        if run.rc == 0:
            problems.append(f"{name} {shown}: ran (rc 0) instead of refusing")
        if missing:
            problems.append(f"{name} {shown}: the refusal does not name {missing}: {message}")
    if changed:
        problems.append(f"the sweep changed {changed}: {', '.join(f'{k}: {before[k]} -> {after[k]}' for k in changed)}")
    report(cases=len(cases), playbooks=len({c[0] for c in cases}),
           refused=len(cases) - sum("instead of refusing" in p for p in problems),
           naming_the_cause=len(cases) - sum("does not name" in p for p in problems),
           nothing_changed=len(cases) if not changed else 0, sweep_s=_s(sweep_s))
    report.details(("Playbook", "Input", "Refusal", "Nothing changed"), rows)
    assert not problems, "bad input not refused cleanly:\n" + "\n".join(problems)


def _iso(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.drill(9, "The bad migration: a table dropped at T under writes; restore_postgres.yml to T brings back "
                      "every row committed before T")
def test_bad_migration_restored_to_a_point_in_time(system: System, report):
    table = f"drill9_orders_{int(time.time())}"
    system.sql(f"CREATE TABLE {table} (n integer PRIMARY KEY)")
    volume = system.data_volume(system.primary().name)

    with load(system.balancer_url + "/up") as result:
        writer = Writer(system, table)
        wait_for(lambda: len(writer.acked) >= 30, 60, "30 rows written one commit at a time")
        target = time.time()
        # More commits after T, then the "migration" drops the table; the writer stops with it.
        wait_for(lambda: writer.acked and max(writer.acked.values()) > target + 1.0, 30, "rows committed after T")
        system.sql(f"DROP TABLE {table}")
        dropped = time.time()
        writer.stop()
        # The leader moves on past T by whole WAL segments, as archive_timeout makes it do within a minute: Patroni
        # records that position in etcd, and the cluster restored to T, segments behind it, must still lead.
        for _ in range(2):
            system.sql("CHECKPOINT", user="postgres")
            system.sql("SELECT pg_switch_wal()", user="postgres")
        before = writer.before(target)
        restore = playbook_ok("restore_postgres.yml", "-e", f"restore_target_time={_iso(target)}",
                              "-e", "confirm_restore=lab", what=f"restore_postgres.yml to {_iso(target)}")
        back = system.wait_served(timeout=180)
        # The standby was cloned from the restored leader (restore_postgres.yml waits for it).
        recloned = wait_for(system.pair_healthy, 120, "the standby to stream from the restored leader")

    restored = {int(n) for n in system.sql(f"SELECT n FROM {table}").split()}
    standby_rows = system.sql(f"SELECT count(*) FROM {table}", node=system.standby())
    lost = before - restored
    after_target = {n for n, at in writer.acked.items() if at > target + 0.5}
    replaced = system.lab.ec2.describe_volumes(VolumeIds=[volume["VolumeId"]])["Volumes"][0]
    tags = {t["Key"]: t["Value"] for t in replaced.get("Tags", [])}
    assert not lost, f"{len(lost)} rows committed before T are missing after the restore: {sorted(lost)[:20]}"
    assert not restored & after_target, f"rows committed well after T came back: {sorted(restored & after_target)[:20]}"
    assert replaced["State"] == "available" and "railsdeploy:replaced-at" in tags, (
        f"the replaced volume {volume['VolumeId']} is {replaced['State']}, tags {tags}: it must be detached and kept")
    assert system.data_volume(system.primary().name)["VolumeId"] != volume["VolumeId"]
    assert standby_rows == str(len(restored)), (
        f"the standby has {standby_rows} rows of {table}, the restored leader {len(restored)}")
    recovered = re.search(r"last transaction recovered committed at (.+?), from backup (\S+?)\.",
                          " ".join(restore.output.split()))
    report(requests=result.total, failed=result.failed, restore_s=_s(restore.seconds),
           outage_s=_outage(result, dropped), served_after_restore_s=_s(back), rows_before_T=len(before),
           rows_restored=len(restored), lost=len(lost), rows_after_T_absent=f"{len(after_target)}/{len(after_target)}",
           recovered_to=recovered.group(1) if recovered else "?", from_backup=recovered.group(2) if recovered else "?",
           kept_volume=volume["VolumeId"], standby_recloned=f"{standby_rows} rows",
           standby_streaming_after_s=_s(back + recloned))


@pytest.mark.drill(10, "The standby's instance stopped (its zone impaired): reads go on, the leader's commits wait "
                       "only until Patroni lets them go on without it, status.yml shows the cluster degraded; started "
                       "again, it catches up and is the synchronous standby again by itself - no playbook run (a lost "
                       "node replaced by provision.yml and deploy_postgres.yml: drill 3)")
def test_standby_lost_and_back(system: System, report):
    leader, standby = system.primary(), system.standby()

    with (load(system.balancer_url + "/up") as result,
          app_writes(system.balancer_url, f"drill10-{int(time.time())}") as writes):
        lost_at = time.time()
        system.lab.ec2.stop_instances(InstanceIds=[standby.instance_id])
        system.materialise()
        # With the synchronous standby gone, Patroni lets the leader's commits go on without it (not strict).
        wait_for(lambda: writes.acked and max(writes.acked.values()) > time.time() - 1, 60,
                 "writes through the app acknowledged without the standby")
        written_again = time.time()
        status = playbook_ok("status.yml", what=f"status.yml with {standby.name} stopped")
        alone = sum(1 for at in writes.acked.values() if at > written_again)
        started = time.time()
        system.lab.ec2.start_instances(InstanceIds=[standby.instance_id])
        system.materialise()
        wait_for(lambda: system.answers_ssh(system.postgres()[standby.name]), 120,
                 f"{standby.name} to answer SSH again")
        # Nobody runs a playbook: the boot starts PostgreSQL on the mounted volume, Patroni has it follow the leader
        # and catch up on what it missed, and makes it the synchronous standby again.
        wait_for(system.pair_healthy, 180, f"{standby.name} to stream again as the synchronous standby")
        caught_up = time.time() - started

    _degraded(status, standby.name)
    back = system.postgres()[standby.name]
    assert back.instance_id == standby.instance_id and system.primary().name == leader.name, (
        f"{leader.name} should still lead and {standby.name} follow it on its own instance: {system.cluster()}")
    rows_lost = _none_lost(system, writes)
    standby_rows = _caught_up(system, writes, back)
    report(**_figures(result, writes, lost_at, written_again), status_degraded=1,
           writes_while_alone=alone, caught_up_after_start_s=_s(caught_up),
           rows_lost=rows_lost, standby_rows=f"{standby_rows} (as the leader)")


@pytest.mark.drill(4, "Planned switchover under load (switchover_postgres.yml -e to=<standby>): the standby leads, "
                       "the old leader follows it, the tags follow; failed reads and writes through the app counted")
def test_planned_switchover(system: System, report):
    leader, standby = system.primary(), system.standby()

    with (load(system.balancer_url + "/up") as result,
          app_writes(system.balancer_url, f"drill11-{int(time.time())}") as writes):
        started = time.time()
        run = playbook_ok("switchover_postgres.yml", "-e", f"to={standby.name}",
                          what=f"switchover_postgres.yml to {standby.name}")
        wait_for(system.pair_healthy, 60, f"{leader.name} to stream as the synchronous standby")
        time.sleep(2)

    assert system.primary().name == standby.name, f"{standby.name} does not lead after the switchover"
    tags = {t["Key"]: t["Value"] for t in system.lab.instance(standby.instance_id).get("Tags", [])}
    assert tags.get("PostgresRole") == "primary", f"{standby.name} is tagged {tags.get('PostgresRole')}, not primary"
    rows_lost = _none_lost(system, writes)
    switched = re.search(r"handed the lead to \S+ in ([0-9.]+) s", " ".join(run.output.split()))
    assert switched, f"switchover_postgres.yml did not say how long the handover took:\n{run.tail()}"
    # The write outage counts from the first write that failed (the playbook's checks before the handover fail none).
    report(**_figures(result, writes, writes.first_failure(started)), handover_s=switched.group(1),
           playbook_s=_s(run.seconds), leader=f"{leader.name}->{standby.name}", rows_lost=rows_lost)

