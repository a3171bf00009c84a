"""Materialise moto's EC2 state: a node container per running instance, a loop device per volume.

One pass reads moto (instances, volumes, key pairs) and Docker, then makes Docker follow:
running/pending instance -> running container at its private IP; stopped -> stopped
container; terminated or gone -> container (and its Docker engine's storage) removed.
Every moto volume has a sparse file and a loop device that outlive instances; attached
volumes appear in the node at their device name and as the Nitro by-id link.
"""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import aws, config, state
from .sh import LabError, docker, log, out, run

NODE_ROLE = "node"
BY_ID = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_"
DEVICE_RE = re.compile(r"^/dev/[a-z][a-z0-9]{1,15}$")
LOOP_MAJOR = 7
ALIVE = {"pending", "running"}
HALTED = {"stopping", "stopped"}


@dataclass
class Instance:
    id: str
    name: str
    state: str
    ip: str
    key_name: str | None
    root_device: str = ""
    background: bool = False  # tagged LabCpu=background: its container yields the CPU (see create_node)


@dataclass
class Volume:
    id: str
    size_gib: int
    attachments: list[tuple[str, str]] = field(default_factory=list)  # (instance id, device)


@dataclass
class Attachment:
    volume_id: str
    device: str
    loop: str
    minor: int

    @property
    def link(self) -> str:
        return BY_ID + self.volume_id.replace("-", "")


def lab_instances(ec2, vpc_id: str) -> list[Instance]:
    found = []
    for res in aws.paginate(ec2, "describe_instances", "Reservations",
                            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]):
        for inst in res["Instances"]:
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
            found.append(Instance(
                id=inst["InstanceId"],
                name=tags.get("Name") or inst["InstanceId"],
                state=inst["State"]["Name"],
                ip=inst.get("PrivateIpAddress", ""),
                key_name=inst.get("KeyName"),
                root_device=inst.get("RootDeviceName", ""),
                background=tags.get(BACKGROUND_TAG) == "background",
            ))
    return found


def lab_volumes(ec2) -> list[Volume]:
    vols = []
    for v in aws.paginate(ec2, "describe_volumes", "Volumes"):
        atts = [(a["InstanceId"], a["Device"]) for a in v.get("Attachments", [])
                if a.get("State") in ("attaching", "attached")]
        vols.append(Volume(id=v["VolumeId"], size_gib=int(v["Size"]), attachments=atts))
    return vols


# ---- volumes: sparse file + loop device -------------------------------------------------

def volume_file(volume_id: str):
    return config.VOLUMES_DIR / f"{volume_id}.img"


def loop_for(path) -> str | None:
    text = out(["losetup", "--associated", str(path), "--noheadings", "--output", "NAME"], check=False)
    return text.splitlines()[0].strip() if text else None


def ensure_loop(vol: Volume) -> tuple[str, int]:
    path = volume_file(vol.id)
    if not path.exists():
        config.VOLUMES_DIR.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            fh.truncate(vol.size_gib * 1024**3)
        log(f"volume {vol.id}: {vol.size_gib} GiB sparse file created")
    loop = loop_for(path) or out(["losetup", "--find", "--show", str(path)])
    minor = int(out(["stat", "-c", "%T", loop]), 16)
    return loop, minor


def release_volume(path) -> None:
    loop = loop_for(path)
    if loop:
        run(["losetup", "--detach", loop], check=False)
    path.unlink(missing_ok=True)


# ---- node containers ----------------------------------------------------------------------

def node_containers() -> dict[str, dict]:
    """Lab node containers by instance id, from one `docker inspect`."""
    ids = out(["docker", "ps", "-aq", "--filter", f"label={config.LABEL}={NODE_ROLE}"]).split()
    if not ids:
        return {}
    found = {}
    for c in json.loads(out(["docker", "inspect", *ids])):
        owner = c["Config"]["Labels"].get(f"{config.LABEL}.owner")
        if owner not in (None, str(config.STATE_DIR)):
            continue  # another checkout's lab
        iid = c["Config"]["Labels"].get(f"{config.LABEL}.instance", "")
        found[iid] = {"id": c["Id"], "name": c["Name"].lstrip("/"), "status": c["State"]["Status"],
                      "started": c["State"]["StartedAt"], "ip": _ip(c)}
    return found


def _ip(c: dict) -> str:
    net = c["NetworkSettings"]["Networks"].get(config.NETWORK) or {}
    return (net.get("IPAMConfig") or {}).get("IPv4Address") or net.get("IPAddress", "")


def docker_volume(instance_id: str) -> str:
    return f"{config.PREFIX}-docker-{instance_id}"


def public_key(ec2, key_name: str | None, cache: dict) -> str:
    if not key_name:
        return ""
    if key_name not in cache:
        pairs = ec2.describe_key_pairs(
            Filters=[{"Name": "key-name", "Values": [key_name]}], IncludePublicKey=True)["KeyPairs"]
        cache[key_name] = pairs[0].get("PublicKey", "") if pairs else ""
    return cache[key_name]


# Not a fidelity fix: a lab runs every instance on one machine's cores, where an instance of the tests beside the main
# lane (the users scenario's, the node tests' itest-*) would take CPU from the one under test. An instance tagged
# LabCpu=background gets the lowest CPU weight (cgroup cpu.shares 2, against 1024): its container's processes (sshd,
# the module runs Ansible starts there, dockerd) run on the CPU the others leave idle. Containers the node's own
# dockerd starts are not inside it (the host's cgroup namespace) and keep the default weight.
BACKGROUND_TAG = "LabCpu"
BACKGROUND_CPU_SHARES = "2"


def create_node(inst: Instance, name: str, pubkey: str) -> None:
    vol = docker_volume(inst.id)
    docker("volume", "create", "--label", f"{config.LABEL}=node-docker", "--label", config.OWNER, vol)
    docker(
        "run", "--detach", "--name", name, "--hostname", inst.name,
        "--label", f"{config.LABEL}={NODE_ROLE}", "--label", f"{config.LABEL}.instance={inst.id}",
        "--label", config.OWNER,
        "--network", config.NETWORK, "--ip", inst.ip,
        # SYS_PTRACE: the node's dockerd enters its containers' namespaces (docker exec, health
        # checks) also when their main process is not root.
        "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-add", "SYS_PTRACE",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--cgroupns", "host", "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        # Loop devices are the lab's EBS volumes; hot-attach creates their nodes later.
        "--device-cgroup-rule", f"b {LOOP_MAJOR}:* rwm",
        "--tmpfs", "/run:exec,mode=755",
        "--volume", f"{vol}:/var/lib/docker",
        # A shutdown waits for dockerd as systemd would (lab-boot: TimeoutStopSec of docker.service's drop-ins).
        "--stop-timeout", "300",
        *(["--cpu-shares", BACKGROUND_CPU_SHARES] if inst.background else []),
        "--env", f"LAB_SSH_PUBLIC_KEY={pubkey}",
        # Where the node's 169.254.169.254:80 leads (lab-boot DNATs it): the lab's instance metadata service.
        "--env", f"LAB_IMDS={config.GATEWAY}:{state.load().get('imds_port', '')}",
        # AWS endpoints as a VPC's DNS resolves them: ECR's, CloudWatch Logs' and CloudWatch's APIs (HTTPS on the
        # gateway, which lab-boot DNATs to the TLS front for moto) and the lab's ECR registry; the lab CA, which
        # signed them all, as a trusted root.
        "--add-host", f"{config.ECR_API}:{config.GATEWAY}", "--add-host", f"{config.ECR_REGISTRY}:{config.ECR_IP}",
        "--add-host", f"{config.LOGS_API}:{config.GATEWAY}", "--add-host", f"{config.MONITORING_API}:{config.GATEWAY}",
        "--env", f"LAB_AWS_HTTPS={state.load().get('tls_front', '')}",
        "--volume", f"{state.load().get('lab_ca', '')}:/usr/local/share/ca-certificates/railsdeploy-lab.crt:ro",
        config.image("node"),
    )
    log(f"instance {inst.id} ({inst.name}) is up as container {name} at {inst.ip}")


def remove_node(iid: str, c: dict) -> None:
    docker("rm", "--force", "--volumes", c["name"], check=False)
    docker("volume", "rm", "--force", docker_volume(iid), check=False)
    log(f"instance {iid}: container {c['name']} removed")


def attach_script(atts: list[Attachment]) -> str:
    """Shell run inside a node: make its block devices match the volume attachments."""
    lines = [
        "set -eu",
        "mkdir -p /dev/disk/by-id /run/lab",
        "touch /run/lab/attached",
        "want='" + " ".join(a.link for a in atts) + "'",
        'while read -r link dev loopdev; do',
        '  case " $want " in *" $link "*) ;; *) rm -f "$link" "$dev" "$loopdev" ;; esac',
        "done < /run/lab/attached",
        ": > /run/lab/attached.new",
        'node() { [ "$(stat -c %t:%T "$1" 2>/dev/null)" = "$2" ] || { rm -f "$1"; mknod "$1" b $3 $4; }; }',
    ]
    for a in atts:
        want = f"{LOOP_MAJOR:x}:{a.minor:x}"
        lines += [
            f"node {a.device} {want} {LOOP_MAJOR} {a.minor}",
            f"node {a.loop} {want} {LOOP_MAJOR} {a.minor}",
            f"ln -sfn ../..{a.device[len('/dev'):]} {a.link}",
            f"echo '{a.link} {a.device} {a.loop}' >> /run/lab/attached.new",
        ]
    lines += ["mv /run/lab/attached.new /run/lab/attached", "touch /run/lab/devices-ready"]
    return "\n".join(lines) + "\n"


def _load_applied() -> dict:
    try:
        return json.loads(config.APPLIED_FILE.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def materialise() -> list[str]:
    """One pass. Returns the problems found (empty when the lab follows moto)."""
    st = state.load()
    if not st.get("vpc_id"):
        raise LabError("the lab is not up: run `make lab-up`")
    ec2 = aws.client("ec2")
    instances = lab_instances(ec2, st["vpc_id"])
    # A root volume is the node container's own filesystem; only data volumes become loop devices.
    roots = {(i.id, i.root_device) for i in instances}
    volumes = []
    for vol in lab_volumes(ec2):
        if vol.attachments and all(att in roots for att in vol.attachments):
            continue
        vol.attachments = [att for att in vol.attachments if att not in roots]
        volumes.append(vol)
    problems: list[str] = []

    loops: dict[str, tuple[str, int]] = {}
    for vol in volumes:
        loops[vol.id] = ensure_loop(vol)
    known = {volume_file(v.id) for v in volumes}
    for path in config.VOLUMES_DIR.glob("*.img") if config.VOLUMES_DIR.exists() else []:
        if path not in known:
            release_volume(path)
            log(f"volume {path.stem} is gone from the cloud: loop device and file released")

    by_id = {i.id: i for i in instances}
    containers = node_containers()
    for iid, c in list(containers.items()):
        inst = by_id.get(iid)
        if inst is None or inst.state not in ALIVE | HALTED:
            remove_node(iid, c)
            del containers[iid]
        elif inst.state in HALTED and c["status"] == "running":
            docker("stop", c["name"], timeout=120)
            log(f"instance {iid} stopped: container {c['name']} stopped")

    used_names = {c["name"] for c in containers.values()}
    keys: dict[str, str] = {}
    for inst in instances:
        if inst.state not in ALIVE:
            continue
        c = containers.get(inst.id)
        try:
            if c is None:
                name = inst.name if inst.name not in used_names else f"{inst.name}-{inst.id}"
                used_names.add(name)
                create_node(inst, name, public_key(ec2, inst.key_name, keys))
            elif c["status"] != "running":
                docker("start", c["name"])
                log(f"instance {inst.id} running: container {c['name']} started")
        except LabError as exc:
            problems.append(f"instance {inst.id} ({inst.name}): {exc}")

    applied = _load_applied()
    fresh: dict[str, str] = {}
    for iid, c in node_containers().items():
        if c["status"] != "running":
            continue
        atts = []
        for vol in volumes:
            for att_iid, device in vol.attachments:
                if att_iid != iid:
                    continue
                if not DEVICE_RE.match(device):
                    problems.append(f"volume {vol.id}: device name {device!r} is not a /dev/ name")
                    continue
                loop, minor = loops[vol.id]
                atts.append(Attachment(vol.id, device, loop, minor))
        script = attach_script(sorted(atts, key=lambda a: a.device))
        key = f"{c['id']}@{c['started']}"
        digest = hashlib.sha256(script.encode()).hexdigest()
        if applied.get(key) != digest:
            try:
                docker("exec", "-i", c["name"], "sh", "-s", input=script)
            except LabError as exc:
                problems.append(f"node {c['name']}: attaching volumes failed: {exc}")
                continue
        fresh[key] = digest
    config.APPLIED_FILE.write_text(json.dumps(fresh))
    return problems


def remove_all() -> None:
    """Every node container and its Docker volume, side by side (each removal mostly waits for its dockerd to stop),
    then the loop devices."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda item: remove_node(*item), node_containers().items()))
    if config.VOLUMES_DIR.exists():
        for path in config.VOLUMES_DIR.glob("*.img"):
            release_volume(path)
