"""What the failure drills act through: the lab's cloud (boto3 on moto), its nodes (SSH, HTTP), the playbooks,
and continuous client load through the lab balancer (lab/loadgen.py).

The drills run against the whole system as `make demo` brings it up (site.yml: provision, users, PostgreSQL,
seed, the app on every rails node). Every helper fails the drill with a message naming what it waited for.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import loadgen  # lab/loadgen.py
from labkit import config as labconfig
from labkit import nodes as labnodes
from lablib.lab import Lab, labctl

REPO = Path(__file__).resolve().parents[2]

PLAYBOOK_TIMEOUT = 1200
PROJECT, ENVIRONMENT = "railsdeploy", "lab"  # inventories/lab/group_vars/all/main.yml
PG_CONTAINER, PG_USER, PG_DB = "postgres", "rails", "rails_production"  # role defaults
PGDATA = "/var/lib/postgresql/data"  # in the PostgreSQL container (roles/postgres_primary/vars/main.yml)
PATRONI_PORT = 8008  # Patroni's REST API on each PostgreSQL node's private address (roles/postgres_primary)
# Lines PostgreSQL logs when it starts on a cluster that was not shut down cleanly.
CRASH_RECOVERY = ("database system was not properly shut down", "automatic recovery in progress",
                  "database system was interrupted")
# The deploy lock (railsdeploy.aws.deploy_lock): the etcd key deploy_lock_key once etcd runs on the primary,
# the directory deploy_lock_path before.
DEPLOY_LOCK = "/var/lib/railsdeploy/locks/deploy_rails"
DEPLOY_LOCK_KEY = "/railsdeploy-locks/railsdeploy-lab/deploy"
ASSETS_BUCKET = "railsdeploy-lab-assets"  # inventories/lab/group_vars/all/main.yml


class DrillFailed(AssertionError):
    pass


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> float:
    """Poll until ``predicate()`` is truthy; the seconds it took. Fails naming ``what`` on timeout."""
    started = time.monotonic()
    last: Any = None
    while True:
        try:
            last = predicate()
            if last:
                return time.monotonic() - started
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last = exc
        if time.monotonic() - started > timeout:
            raise DrillFailed(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def http_get(url: str, timeout: float = 3) -> tuple[int | None, str]:
    """(status, body) of a GET; status None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read(500).decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError as exc:
        return None, f"{type(exc).__name__}: {exc}"


@dataclass
class Run:
    argv: list[str]
    rc: int
    output: str
    seconds: float

    def tail(self, chars: int = 4000) -> str:
        return self.output[-chars:]


def playbook(name: str, *args: str, timeout: float = PLAYBOOK_TIMEOUT, env: dict | None = None) -> Run:
    """ansible-playbook playbooks/<name> with the lab inventory (ansible.cfg); never raises on rc."""
    argv = ["ansible-playbook", f"playbooks/{name}", *args]
    run_env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", **(env or {}))
    run_env.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=run_env, timeout=timeout)
    run = Run(argv, proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started)
    if os.environ.get("RAILSDEPLOY_DRILL_LOGS"):  # a directory: every run's whole output, for reading afterwards
        logs = Path(os.environ["RAILSDEPLOY_DRILL_LOGS"])
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{time.strftime('%H%M%S')}-{Path(name).stem}.log").write_text(
            f"$ {' '.join(argv)}\n# rc {run.rc}, {run.seconds:.1f} s\n{run.output}")
    return run


def playbook_ok(name: str, *args: str, what: str = "") -> Run:
    run = playbook(name, *args)
    if run.rc != 0:
        raise DrillFailed(f"{what or name} failed (rc {run.rc}):\n{run.tail()}")
    return run


class Background:
    """ansible-playbook in its own process group, to be killed mid-run like an interrupted deploy; its output
    goes to ``log``."""

    def __init__(self, log: Path, name: str, *args: str, env: dict | None = None):
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", **(env or {}))
        env.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(["ansible-playbook", f"playbooks/{name}", *args], cwd=REPO, env=env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


@dataclass
class LoadResult:
    started: float
    summary: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.summary["total"]

    @property
    def failed(self) -> int:
        return self.summary["failed"]

    @property
    def error_seconds(self) -> int:
        return self.summary["error_seconds"]

    @property
    def last_failure(self) -> float | None:
        return self.summary["last_failure"]

    @property
    def first_failure(self) -> float | None:
        return self.summary["first_failure"]

    def bodies(self) -> set[str]:
        return set(self.summary["bodies"])


@contextlib.contextmanager
def load(url: str) -> Iterator[LoadResult]:
    """Continuous client requests to ``url`` while the block runs (lab/loadgen.py: 4 clients, about 40 requests a
    second, 3 s timeout)."""
    result = LoadResult(started=time.time())
    with loadgen.in_background(url, timeout=3) as summary:
        yield result
    if not summary and sys.exc_info()[0] is None:
        raise DrillFailed("the load client wrote no summary")
    result.summary = summary


@dataclass
class Node:
    name: str
    instance_id: str
    ip: str
    state: str


class System:
    """The lab running the whole system: nodes by name, the primary's database, the balancer."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.balancer_url = lab.balancer_url

    # ---- cloud ---------------------------------------------------------------------------------------------

    def nodes(self, role: str | None = None, states=("pending", "running")) -> dict[str, Node]:
        filters = [{"Name": "tag:Project", "Values": [PROJECT]}, {"Name": "tag:Environment", "Values": [ENVIRONMENT]},
                   {"Name": "instance-state-name", "Values": list(states)}]
        if role:
            filters.append({"Name": "tag:Role", "Values": [role]})
        found = {}
        for res in self.lab.ec2.describe_instances(Filters=filters)["Reservations"]:
            for inst in res["Instances"]:
                tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
                found[tags["Name"]] = Node(tags["Name"], inst["InstanceId"], inst.get("PrivateIpAddress", ""),
                                           inst["State"]["Name"])
        return dict(sorted(found.items()))

    def rails(self) -> dict[str, Node]:
        return self.nodes("rails")

    def postgres(self) -> dict[str, Node]:
        return self.nodes("postgres")

    def cluster(self, exclude: str = "") -> dict[str, dict]:
        """Patroni's members by name ({"role": "leader" | "sync_standby" | "replica", "state", "timeline", "lag"}),
        when every running PostgreSQL node whose REST API answers (but ``exclude``: a node cut off from etcd shows what
        it saw last) names the same roles; {} when none answers or they disagree (a node that has just come back may
        read etcd behind the others for a while)."""
        views = []
        for node in self.postgres().values():
            if node.name == exclude:
                continue
            try:
                with urllib.request.urlopen(f"http://{node.ip}:{PATRONI_PORT}/cluster", timeout=2) as answer:
                    views.append({m["name"]: m for m in json.load(answer)["members"]})
            except (OSError, ValueError):
                continue
        roles = [{name: m.get("role") for name, m in view.items()} for view in views]
        return views[0] if views and all(r == roles[0] for r in roles) else {}

    def primary(self, exclude: str = "") -> Node:
        """The PostgreSQL leader Patroni names (whichever node that is after a failover), asked on a node other than
        ``exclude`` when given."""
        nodes, members = self.postgres(), self.cluster(exclude)
        leaders = [name for name, m in members.items() if m.get("role") == "leader" and m.get("state") == "running"]
        if len(leaders) != 1 or leaders[0] not in nodes:
            raise DrillFailed(f"expected one running PostgreSQL leader among {sorted(nodes)}, Patroni says {members}")
        return nodes[leaders[0]]

    def standby(self) -> Node:
        """The PostgreSQL node that is not the leader (the pair's standby)."""
        leader = self.primary()
        others = [node for name, node in self.postgres().items() if name != leader.name]
        if len(others) != 1:
            raise DrillFailed(f"expected one PostgreSQL node beside the leader {leader.name}, found {others}")
        return others[0]

    def new_leader(self, old: Node) -> bool:
        """Another node than ``old`` leads, running."""
        with contextlib.suppress(DrillFailed):
            return self.primary(exclude=old.name).name != old.name
        return False

    def patroni_role(self, node: Node) -> str | None:
        """The role Patroni on ``node`` reports for itself ("master" when it leads), None when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://{node.ip}:{PATRONI_PORT}/patroni", timeout=2) as answer:
                return json.load(answer).get("role")
        except urllib.error.HTTPError as exc:  # 503 while it is not healthy: the body still says
            with contextlib.suppress(ValueError):
                return json.load(exc).get("role")
        except (OSError, ValueError):
            pass
        return None

    def cut_off(self, node: Node, peers: list[Node], cut: bool = True) -> None:
        """Drop (or, ``cut`` False, restore) every packet from ``peers`` to ``node``, before the node's NAT and
        Docker's rules see it: TCP to and from them cannot work, everything else (SSH, the balancer) does."""
        action = "-I" if cut else "-D"
        rules = " && ".join(f"sudo iptables -t raw {action} PREROUTING -s {peer.ip} -j DROP" for peer in peers)
        self.ssh(node, rules)

    def pair_healthy(self) -> bool:
        """Two members: a running leader and a streaming synchronous standby on its timeline, no lag."""
        members = list(self.cluster().values())
        leaders = [m for m in members if m.get("role") == "leader" and m.get("state") == "running"]
        standbys = [m for m in members
                    if m.get("role") == "sync_standby" and m.get("state") in ("streaming", "running")]
        return (len(members) == 2 and len(leaders) == 1 and len(standbys) == 1
                and standbys[0].get("timeline") == leaders[0].get("timeline") and standbys[0].get("lag") == 0)

    def data_volume(self, node_name: str) -> dict:
        """The node's data volume (tagged ``<project>-<environment>-<node>-data`` by provision.yml)."""
        name = f"{PROJECT}-{ENVIRONMENT}-{node_name}-data"
        found = self.lab.ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": [name]}])["Volumes"]
        if len(found) != 1:
            raise DrillFailed(f"expected one volume named {name}, found {[v['VolumeId'] for v in found]}")
        return found[0]

    def materialise(self) -> None:
        """Make the node containers follow moto now (the lab's watcher does it within seconds anyway)."""
        proc = labctl("materialise", timeout=300)
        if proc.returncode not in (0, 1):
            raise DrillFailed(f"labctl materialise failed: {proc.stderr}")

    @contextlib.contextmanager
    def placeholder(self, subnet_id: str) -> Iterator[Callable[[str], str]]:
        """A function that starts an instance outside the project (no Project tag) in the subnet, at the given
        private address once moto has freed it, and returns its address; terminated when the block ends."""
        started: list[str] = []

        def start(address: str) -> str:
            def run(**at) -> dict:
                return self.lab.ec2.run_instances(
                    ImageId=self.lab.ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=subnet_id,
                    TagSpecifications=[{"ResourceType": "instance",
                                        "Tags": [{"Key": "Name", "Value": "drill-placeholder"}]}], **at,
                )["Instances"][0]

            # moto frees a terminated instance's address when it drops the instance (garbage collection), not at
            # termination: until then the address is "in use" and nobody gets it; afterwards the next instance
            # may. Take it as soon as it is free.
            inst = None
            deadline = time.monotonic() + 60
            while inst is None and time.monotonic() < deadline:
                try:
                    inst = run(PrivateIpAddress=address)
                except Exception as exc:  # noqa: BLE001 - moto answers 500 "IP already in use" until it is free
                    if "in use" not in str(exc):
                        raise
                    time.sleep(0.5)
            if inst is None:  # still held by the terminated instance: nobody else gets it either, for now
                inst = run()
            started.append(inst["InstanceId"])
            return inst["PrivateIpAddress"]

        try:
            yield start
        finally:
            if started:
                self.lab.ec2.terminate_instances(InstanceIds=started)
                self.materialise()

    def node_container(self, node: Node) -> str:
        """Name of the lab container that is the instance."""
        c = labnodes.node_containers().get(node.instance_id)
        if not c:
            raise DrillFailed(f"{node.name} ({node.instance_id}) has no lab container")
        return c["name"]

    def target_group_arn(self) -> str:
        """The app's target group (the one the project's load balancer forwards to)."""
        groups = [tg for tg in self.lab.elbv2.describe_target_groups()["TargetGroups"]
                  if tg["TargetGroupName"].startswith(f"{PROJECT}-{ENVIRONMENT}")]
        if len(groups) != 1:
            raise DrillFailed(f"expected one target group named {PROJECT}-{ENVIRONMENT}*, found "
                              f"{[tg['TargetGroupName'] for tg in groups]}")
        return groups[0]["TargetGroupArn"]

    def healthy_targets(self, target_group_arn: str) -> set[str]:
        health = self.lab.elbv2.describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
        return {t["Target"]["Id"] for t in health if t["TargetHealth"]["State"] == "healthy"}

    # ---- nodes -----------------------------------------------------------------------------------------------

    def ssh(self, node: Node, command: str, timeout: float = 120) -> str:
        proc = self.lab.ssh(node.ip, command, timeout=timeout)
        if proc.returncode != 0:
            raise DrillFailed(f"on {node.name}: {command!r} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout

    def answers_ssh(self, node: Node) -> bool:
        return self.lab.ssh(node.ip, "true", timeout=10).returncode == 0

    def running_containers(self, node: Node) -> dict[str, str]:
        """{container name: StartedAt} of the running containers on the node's Docker engine."""
        out = self.ssh(node, "sudo docker ps -q | xargs -r sudo docker inspect -f '{{.Name}} {{.State.StartedAt}}'")
        return dict(line.lstrip("/").split(" ", 1) for line in out.splitlines() if line.strip())

    def node_status(self, node: Node, path: str = "/up") -> int | None:
        return http_get(f"http://{node.ip}{path}", timeout=2)[0]

    def serving(self, node: Node) -> str | None:
        status, body = http_get(f"http://{node.ip}/version", timeout=2)
        return body if status == 200 else None

    def all_rails(self, status_ok: bool) -> bool:
        """Every rails node answers /up 200 (status_ok) - or none does (not status_ok)."""
        codes = [self.node_status(n) for n in self.rails().values()]
        return bool(codes) and all((c == 200) == status_ok for c in codes)

    def balancer_steady(self, requests: int = 20, path: str = "/up") -> bool:
        """``requests`` answers in a row are 200 through the balancer (every node it sends to serves)."""
        return all(http_get(self.balancer_url + path, timeout=3)[0] == 200 for _ in range(requests))

    def wait_served(self, timeout: float = 120) -> float:
        """Seconds until every rails node answers /up and the balancer sends only to serving nodes."""
        started = time.monotonic()
        wait_for(lambda: self.all_rails(True), timeout, "every rails node to answer /up 200")
        wait_for(self.balancer_steady, timeout, "20 answers in a row of 200 through the balancer")
        return time.monotonic() - started

    # ---- what a user has: compared before and after a refused run ------------------------------------------

    # This environment's volumes and snapshots (the lab's node tests make their own beside the drills, itest-*).
    _environment = [{"Name": "tag:Project", "Values": [PROJECT]}, {"Name": "tag:Environment", "Values": [ENVIRONMENT]}]

    def fingerprint(self) -> dict[str, Any]:
        """Everything a refused run must leave as it was: instances, volumes and their attachments, DNS records,
        healthy targets, each node's running containers (a re-created one has a new start time), the release
        each rails node serves, the deploy lock, the running server's archive configuration, the rows, the asset
        objects, the data volume's snapshots (a refused deploy_postgres.yml takes none)."""
        ec2, lab = self.lab.ec2, self.lab
        all_nodes = self.nodes(states=("pending", "running", "stopping", "stopped"))
        volumes = sorted((v["VolumeId"], v["State"], tuple(sorted(a["InstanceId"] for a in v.get("Attachments", []))))
                         for v in ec2.describe_volumes(Filters=self._environment)["Volumes"])
        route53 = boto_client(lab, "route53")
        records = sorted((r["Name"], r["Type"], json.dumps(r.get("ResourceRecords") or r.get("AliasTarget"),
                                                            sort_keys=True))
                         for r in route53.list_resource_record_sets(HostedZoneId=lab.state["hosted_zone_id"])[
                             "ResourceRecordSets"])
        s3 = boto_client(lab, "s3")
        objects = sorted(o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=ASSETS_BUCKET)
                         for o in page.get("Contents", []))
        snapshots = sorted(snap["SnapshotId"] for snap in ec2.describe_snapshots(OwnerIds=["self"],
                                                                                   Filters=self._environment)["Snapshots"])
        primary = self.primary()
        return {
            "instances": {n.name: (n.instance_id, n.state, n.ip) for n in all_nodes.values()},
            "volumes": volumes,
            "dns": records,
            "healthy_targets": sorted(self.healthy_targets(self.target_group_arn())),
            "containers": {n.name: self.running_containers(n) for n in all_nodes.values() if n.state == "running"},
            "serving": {n.name: self.serving(n) for n in self.rails().values()},
            "deploy_lock": self.ssh(primary, f"{{ sudo docker exec etcd etcdctl get --keys-only {DEPLOY_LOCK_KEY}; "
                                             f"sudo test -e {DEPLOY_LOCK} && echo dir; }} 2>/dev/null | grep -q . "
                                             f"&& echo held || echo free").strip(),
            "archive_config": self.ssh(primary, "sudo sha256sum /etc/pgbackrest/pgbackrest.conf").split()[0],
            "rows": self.sql("SELECT count(*) FROM notes"),
            "assets": objects,
            "snapshots": snapshots,
        }

    # ---- the database ---------------------------------------------------------------------------------------

    def notes(self, writes: AppWrites, node: Node | None = None) -> set[str]:
        """The notes of ``writes`` the database holds now (on the primary, or on ``node``)."""
        return set(self.sql(f"SELECT text FROM notes WHERE text LIKE '{writes.marker} %'", node=node).splitlines())

    def sql(self, query: str, user: str = PG_USER, node: Node | None = None) -> str:
        """The query's result, as the app's user (or ``user``, e.g. the superuser ``postgres``), on the primary (or
        on ``node``: on a standby, read-only)."""
        cmd = (f"sudo docker exec {PG_CONTAINER} psql -X -tA -v ON_ERROR_STOP=1 -U {user} -d {PG_DB} "
               f"-c {shell_quote(query)}")
        return self.ssh(node or self.primary(), cmd).strip()

    def write_rows(self, marker: str, count: int = 50) -> int:
        self.sql(f"INSERT INTO notes (text) SELECT '{marker} ' || g FROM generate_series(1, {count}) g")
        return self.rows(marker)

    def rows(self, marker: str) -> int:
        return int(self.sql(f"SELECT count(*) FROM notes WHERE text LIKE '{marker} %'"))

    def postgres_log(self, node: Node, *, since_start: bool = False, tail: int = 30) -> str:
        """PostgreSQL's log (the container's output): the last ``tail`` lines, or everything since its container's
        latest start."""
        if since_start:
            started = self.ssh(node, f"sudo docker inspect -f '{{{{.State.StartedAt}}}}' {PG_CONTAINER}").strip()
            return self.ssh(node, f"sudo docker logs --since {shell_quote(started)} {PG_CONTAINER} 2>&1")
        return self.ssh(node, f"sudo docker logs --tail {tail} {PG_CONTAINER} 2>&1")

    def crash_recovery(self, node: Node) -> list[str]:
        """Why the latest start of PostgreSQL was not a clean one: its log lines of crash recovery, or that it
        never became ready. Empty after a clean shutdown and start."""
        log = self.postgres_log(node, since_start=True)
        problems = [line for line in log.splitlines() if any(words in line for words in CRASH_RECOVERY)]
        # Patroni starts a cluster as a standby, then promotes it: ready for reads first, for writes a moment later.
        if not re.search(r"database system is ready to accept (read-only )?connections", log):
            problems.append(f"no 'ready to accept connections' since the start: {log[-500:]!r}")
        return problems

    def pgdata_filesystem(self, node: Node) -> tuple[str, str]:
        """(device, mount point) of the filesystem that holds the PostgreSQL container's data directory."""
        template = f'{{{{range .Mounts}}}}{{{{if eq .Destination "{PGDATA}"}}}}{{{{.Source}}}}{{{{end}}}}{{{{end}}}}'
        source = self.ssh(node, f"sudo docker inspect -f {shell_quote(template)} {PG_CONTAINER}").strip()
        if not source:
            raise DrillFailed(f"{node.name}: the {PG_CONTAINER} container mounts nothing at {PGDATA}")
        found = self.ssh(node, f"findmnt --noheadings --output SOURCE,TARGET --target {shell_quote(source)}")
        device, target = found.split()
        return device, target


class AppWrites:
    """Notes posted through the balancer (POST /notes, as the app's users write), one after another every
    ``interval`` seconds until stopped, each with its own text ``<marker> <n>``: ``acked`` maps the texts the app
    acknowledged (201) to the time of the answer, ``failed`` lists the times failed requests were sent."""

    def __init__(self, url: str, marker: str, interval: float = 0.1, timeout: float = 3):
        self.url, self.marker, self.interval, self.timeout = url + "/notes", marker, interval, timeout
        self.acked: dict[str, float] = {}
        self.failed: list[float] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            text, sent = f"{self.marker} {n}", time.time()
            request = urllib.request.Request(self.url, data=urllib.parse.urlencode({"text": text}).encode())
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    ok = answer.status == 201
            except (OSError, ValueError):
                ok = False
            if ok:
                self.acked[text] = time.time()
            else:
                self.failed.append(sent)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=self.timeout + 5)

    def first_failure(self, since: float) -> float:
        """The time of the first write sent at or after ``since`` that failed; ``since`` when none did."""
        return min((t for t in self.failed if t >= since), default=since)

    def outage(self, since: float, until: float | None = None) -> float:
        """Seconds from ``since`` to the first acknowledged write after the last write that failed after it (and
        before ``until``: later failures belong to something else); to the first acknowledged write after ``since``
        when none failed."""
        failures = [t for t in self.failed if since <= t < (until or float("inf"))]
        after = max(failures) if failures else since
        answered = [t for t in self.acked.values() if t > after]
        if not answered:
            raise DrillFailed(f"no write was acknowledged after {after - since:.1f} s from the failure")
        return min(answered) - since


@contextlib.contextmanager
def app_writes(url: str, marker: str, first: int = 20) -> Iterator[AppWrites]:
    """AppWrites through ``url`` while the block runs, which starts once ``first`` writes were acknowledged."""
    writes = AppWrites(url, marker)
    try:
        wait_for(lambda: len(writes.acked) >= first, 60, f"{first} notes written through the app")
        yield writes
    finally:
        writes.stop()


class Writer:
    """Rows committed one at a time into ``table`` on the primary, every ``interval`` seconds, until stopped (or the
    table is gone): ``acked`` maps each row's number to the time its commit was acknowledged, read on this machine
    as psql reported it. A row acknowledged before a time was committed before it."""

    def __init__(self, system: System, table: str, interval: float = 0.1):
        self.acked: dict[int, float] = {}
        loop = (f"i=0; while :; do i=$((i+1)); psql -X -tA -v ON_ERROR_STOP=1 -U {PG_USER} -d {PG_DB} "
                f"-c \"INSERT INTO {table} (n) VALUES ($i) RETURNING n\" || exit 0; sleep {interval}; done")
        cmd = system.lab.ssh_argv(system.primary().ip, f"sudo docker exec {PG_CONTAINER} sh -c {shell_quote(loop)}")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.strip().isdigit():
                self.acked[int(line)] = time.time()

    def before(self, moment: float) -> set[int]:
        return {n for n, at in list(self.acked.items()) if at < moment}

    def stop(self) -> None:
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.thread.join(timeout=10)


def boto_client(lab: Lab, service: str):
    return boto3.client(service, endpoint_url=lab.state["endpoint_url"], region_name=lab.region,
                        aws_access_key_id=labconfig.ACCESS_KEY, aws_secret_access_key=labconfig.SECRET_KEY)


@contextlib.contextmanager
def refusing_registry() -> Iterator[str]:
    """A registry on 127.0.0.1 that refuses every login (401 to the Docker registry API); its host:port."""

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="drill registry"')
            self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
            self.send_header("Content-Type", "application/json")
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_POST = do_PUT = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
