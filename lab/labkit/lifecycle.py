"""Bring the lab up and down: moto, the VPC, the Docker network, registry, balancer, watcher."""

from __future__ import annotations

import shutil
import signal
import sys
import time
import warnings
from pathlib import Path

from . import aws, balancer, config, images, imds, nodes, service, state, tlsfront
from .net import free_port, wait_http
from .sh import LabError, docker, log, out, run

REGISTRY = f"{config.PREFIX}-registry"
CLOUD_KEYS = ("vpc_id", "subnets", "key_name", "hosted_zone_id", "domain", "ami_id", "cdn_certificate_arn")
LAB_DOMAIN = "lab.example.com"
MOTO = "moto"  # service names (labkit.service): <name>.pid and <name>.log in the state dir
WATCH = "watch"


def start_moto() -> str:
    st = state.load()
    if service.alive(service.pid_file(MOTO)) and st.get("endpoint_url"):
        return st["endpoint_url"]
    port = free_port()
    service.start(MOTO, [sys.executable, str(config.LAB_DIR / "moto_server.py"), "-H", "127.0.0.1", "-p", str(port)])
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/moto-api/")
    # A new moto holds nothing: forget the cloud the state file remembers from an earlier one.
    data = {k: v for k, v in state.load().items() if k not in CLOUD_KEYS}
    state.save({**data, "endpoint_url": url, "moto_port": port, "region": config.REGION})
    log(f"moto_server answers at {url}")
    return url


def is_up() -> bool:
    """This checkout's lab is up: its moto runs and answers (what `up` would otherwise start)."""
    url = state.load().get("endpoint_url")
    if not url or not service.alive(service.pid_file(MOTO)):
        return False
    try:
        wait_http(url + "/moto-api/", seconds=3)
        return True
    except LabError:
        return False


def ensure_ssh_key() -> str:
    if not config.SSH_KEY.exists():
        config.SSH_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "railsdeploy-lab", "-f", str(config.SSH_KEY)])
    return config.SSH_KEY.with_suffix(".pub").read_text().strip()


def seed_cloud(pubkey: str) -> dict:
    """The account's pre-existing network, as the user would have it: VPC, subnets, key pair."""
    st = state.load()
    ec2 = aws.client("ec2")
    if not st.get("ami_id"):
        # The AMI the lab's instances "boot": the node image is what actually runs.
        ami = ec2.register_image(
            Name="debian-12-amd64-railsdeploy-lab", Architecture="x86_64", RootDeviceName="/dev/xvda",
            VirtualizationType="hvm", EnaSupport=True,
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "VolumeType": "gp3"}}])
        st = state.update(ami_id=ami["ImageId"])
    if not st.get("cdn_certificate_arn"):
        # The ACM certificate a user requests for the assets' own name, in us-east-1 as CloudFront requires.
        arn = aws.client("acm", region_name="us-east-1").request_certificate(
            DomainName=f"assets.{LAB_DOMAIN}", ValidationMethod="DNS")["CertificateArn"]
        st = state.update(cdn_certificate_arn=arn)
    if st.get("vpc_id"):
        return st
    vpc_id = ec2.create_vpc(CidrBlock=config.VPC_CIDR, TagSpecifications=[{
        "ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "railsdeploy-lab"}]}])["Vpc"]["VpcId"]
    subnets = {}
    for az, cidr in config.SUBNETS.items():
        tags = [{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": f"railsdeploy-lab-{az}"}]}]
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=az, TagSpecifications=tags)
        subnets[az] = subnet["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    ec2.import_key_pair(KeyName=config.KEY_PAIR_NAME, PublicKeyMaterial=pubkey.encode())
    zone = aws.client("route53").create_hosted_zone(Name=f"{LAB_DOMAIN}.", CallerReference=str(time.time()))
    return state.update(vpc_id=vpc_id, subnets=subnets, key_name=config.KEY_PAIR_NAME,
                        hosted_zone_id=zone["HostedZone"]["Id"].split("/")[-1], domain=LAB_DOMAIN)


def ensure_network() -> None:
    if docker("network", "inspect", config.NETWORK, check=False).returncode == 0:
        return
    docker("network", "create", "--label", f"{config.LABEL}=network", "--label", config.OWNER,
           "--subnet", config.VPC_CIDR, "--gateway", config.GATEWAY, config.NETWORK)


def _container_running(name: str) -> bool:
    proc = docker("inspect", "--format", "{{.State.Running}}", name, check=False)
    return proc.returncode == 0 and proc.stdout.strip() == "true"


def ensure_registry() -> int:
    """The lab's registry, serving images.PUBLISHED from the start: its storage is a copy of the registry cache
    (a copy, so that what the lab pushes goes away with the lab and the cache stays as built)."""
    st = state.load()
    if _container_running(REGISTRY) and st.get("registry_port"):
        return st["registry_port"]
    docker("rm", "--force", REGISTRY, check=False)
    cache = images.ensure_registry_cache()
    data = f"{REGISTRY}-data"
    docker("volume", "rm", "--force", data, check=False)
    docker("volume", "create", "--label", f"{config.LABEL}=registry-data", "--label", config.OWNER, data)
    docker("run", "--rm", "--entrypoint", "cp", "-v", f"{cache}:/cache:ro", "-v", f"{data}:/data",
           config.image("registry"), "-a", "/cache/.", "/data/", timeout=600)
    port = free_port()
    docker("run", "--detach", "--name", REGISTRY, "--label", f"{config.LABEL}=registry", "--label", config.OWNER,
           "--network", config.NETWORK, "--ip", config.REGISTRY_IP,
           "--publish", f"127.0.0.1:{port}:{config.REGISTRY_PORT}",
           "--volume", f"{data}:{images.REGISTRY_DATA}", config.image("registry"))
    wait_http(f"http://127.0.0.1:{port}/v2/")
    state.update(registry_port=port, registry_push=f"127.0.0.1:{port}",
                 registry=f"{config.REGISTRY_IP}:{config.REGISTRY_PORT}")
    log(f"registry {state.load()['registry']} serves {', '.join(images.PUBLISHED)} (copied from {cache})")
    return port


ECR = f"{config.PREFIX}-ecr"
ECR_DIR = "/etc/lab-ecr"


def ensure_ecr() -> None:
    """The lab's ECR registry (config.ECR_REGISTRY): the lab registry's storage, read-only, over TLS, for the user
    ``AWS`` with the password inside the token moto's ECR GetAuthorizationToken returns - what a real ECR registry
    accepts. Docker on a node gets that token from docker-credential-ecr-login with the node's IAM role (IMDS)."""
    if _container_running(ECR):
        return
    docker("rm", "--force", ECR, check=False)
    directory = config.STATE_DIR / "ecr"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert, key = tlsfront.ensure_registry_cert(config.TLS_DIR, config.ECR_REGISTRY)
    (directory / "registry.crt").write_bytes(cert.read_bytes())
    (directory / "registry.key").write_bytes(key.read_bytes())
    (directory / "registry.key").chmod(0o600)
    # moto's token is base64("AWS:<account>-auth-token") (moto/ecr/responses.py); the registry checks it as ECR does.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # noqa: PLC0415 - Python 3.11's bcrypt via libxcrypt; no bcrypt package in the stack
        hashed = crypt.crypt(f"{config.ECR_ACCOUNT}-auth-token", crypt.mksalt(crypt.METHOD_BLOWFISH))
    (directory / "htpasswd").write_text(f"AWS:{hashed}\n")
    (directory / "config.yml").write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {images.REGISTRY_DATA}
  maintenance:
    uploadpurging:
      enabled: false
    readonly:
      enabled: true
http:
  addr: :443
  tls:
    certificate: {ECR_DIR}/registry.crt
    key: {ECR_DIR}/registry.key
auth:
  htpasswd:
    realm: {config.ECR_REGISTRY}
    path: {ECR_DIR}/htpasswd
""")
    docker("run", "--detach", "--name", ECR, "--label", f"{config.LABEL}=ecr", "--label", config.OWNER,
           "--network", config.NETWORK, "--ip", config.ECR_IP,
           "--volume", f"{REGISTRY}-data:{images.REGISTRY_DATA}:ro", "--volume", f"{directory}:{ECR_DIR}:ro",
           "--entrypoint", "/usr/bin/docker-registry", config.image("registry"), "serve", f"{ECR_DIR}/config.yml")
    log(f"ECR registry {config.ECR_REGISTRY} ({config.ECR_IP}) serves the lab registry's images to ECR tokens")


def ensure_balancer() -> int:
    st = state.load()
    if _container_running(balancer.CONTAINER) and st.get("balancer_port"):
        return st["balancer_port"]
    docker("rm", "--force", balancer.CONTAINER, check=False)
    config.BALANCER_DIR.mkdir(parents=True, exist_ok=True)
    (config.BALANCER_DIR / balancer.CFG_NAME).write_text(balancer.render(balancer.Backend()))
    port = free_port()
    docker("run", "--detach", "--name", balancer.CONTAINER,
           "--label", f"{config.LABEL}=balancer", "--label", config.OWNER,
           "--network", config.NETWORK, "--ip", config.BALANCER_IP,
           "--publish", f"127.0.0.1:{port}:80",
           "--volume", f"{config.BALANCER_DIR}:{balancer.HAPROXY_DIR}", config.image("balancer"))
    state.update(balancer_port=port, balancer_url=f"http://127.0.0.1:{port}")
    return port


def start_watcher() -> None:
    if not service.alive(service.pid_file(WATCH)):
        service.start(WATCH, [sys.executable, str(config.LAB_DIR / "labctl.py"), "watch"])


def other_labs() -> dict[str, list[str]]:
    """Lab containers on this machine that belong to another checkout, by owner state dir."""
    found: dict[str, list[str]] = {}
    rows = out(["docker", "ps", "-a", "--filter", f"label={config.LABEL}",
                "--format", f'{{{{.ID}}}} {{{{.Label "{config.LABEL}.owner"}}}}']).splitlines()
    for row in rows:
        cid, _, owner = row.partition(" ")
        if owner != str(config.STATE_DIR):
            found.setdefault(owner, []).append(cid)
    return found


def clear_stale_labs() -> None:
    """Refuse to start beside a live lab of another checkout; remove what dead ones left."""
    for owner, cids in other_labs().items():
        if owner and service.alive(Path(owner) / f"{MOTO}.pid"):
            raise LabError(f"another lab is running on this machine (state in {owner}): "
                           "run `make lab-down` in that checkout first")
        for cid in cids:
            docker("rm", "--force", "--volumes", cid, check=False)
        for vol in out(["docker", "volume", "ls", "-q", "--filter", f"label={config.LABEL}.owner={owner}"]).split():
            docker("volume", "rm", "--force", vol, check=False)
        log(f"removed {len(cids)} container(s) left by a lab that is gone ({owner or 'unknown'})")
    if docker("network", "inspect", config.NETWORK, check=False).returncode == 0:
        owner = out(["docker", "network", "inspect", "--format",
                     f'{{{{index .Labels "{config.LABEL}.owner"}}}}', config.NETWORK])
        if owner != str(config.STATE_DIR):
            docker("network", "rm", config.NETWORK, check=False)


def up() -> dict:
    config.STATE_DIR.mkdir(parents=True, exist_ok=True)
    clear_stale_labs()
    images.ensure_images()
    pubkey = ensure_ssh_key()
    start_moto()
    seed_cloud(pubkey)
    ensure_network()
    # On the lab gateway, which exists once the network does: the nodes' instance metadata service (each node
    # DNATs 169.254.169.254:80 to it) and HTTPS in front of moto (for pgBackRest, which speaks only HTTPS to S3).
    imds.start_imds()
    tlsfront.start_tls_front()
    ensure_registry()
    ensure_ecr()
    ensure_balancer()
    for problem in sync_once():
        log(problem)
    start_watcher()
    return state.load()


def down() -> None:
    service.stop(WATCH, MOTO, imds.SERVICE, tlsfront.SERVICE)
    nodes.remove_all()
    for cid in out(["docker", "ps", "-aq", "--filter", f"label={config.OWNER}"]).split():
        docker("rm", "--force", cid, check=False)
    for vol in out(["docker", "volume", "ls", "-q", "--filter", f"label={config.OWNER}"]).split():
        docker("volume", "rm", "--force", vol, check=False)
    docker("network", "rm", config.NETWORK, check=False)
    if config.STATE_DIR.exists():
        shutil.rmtree(config.STATE_DIR)
    log("lab is down: no container, network, loop device or file of it is left")


def with_lock(fn):
    import fcntl

    config.STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(config.LOCK_FILE, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        return fn()


def sync_once() -> list[str]:
    """One pass of materialise + balancer sync, serialised with any other pass."""
    def both() -> list[str]:
        problems = nodes.materialise()
        balancer.sync(state.load()["vpc_id"])
        return problems

    return with_lock(both)


def watch(interval: float = 1.0, idle_interval: float = 5.0) -> None:
    """Follow moto for as long as the lab is up (started in the background by `up`). A full pass (nodes, volumes,
    balancer) runs within `interval` of any request moto served (moto_server counts them) and while a problem is
    open, otherwise every `idle_interval`; between them, targets waiting to be admitted are health-checked every
    `interval` against the target group the last pass read."""
    aws.mark_as_watcher()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    seen, last, problems = None, 0.0, ["no pass yet"]
    while not stop:
        try:
            count = config.MOTO_REQUESTS_FILE.read_text()
        except OSError:
            count = None
        try:
            if problems or count != seen or time.monotonic() - last >= idle_interval:
                seen, last = count, time.monotonic()
                problems = sync_once()
                for problem in problems:
                    log(problem)
            elif balancer.targets_pending():
                with_lock(lambda: balancer.sync("", reuse_desired=True))
        except Exception as exc:  # keep following; a moto hiccup must not end the lab
            log(f"watch: {exc}")
            problems = [str(exc)]
        time.sleep(interval)
