"""Fixed facts of the lab: where its state lives, its names, its network."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = REPO / "lab"
IMAGES_DIR = LAB_DIR / "images"
STATE_DIR = Path(os.environ.get("RAILSDEPLOY_LAB_STATE", LAB_DIR / ".state"))
STATE_FILE = STATE_DIR / "lab.json"
VOLUMES_DIR = STATE_DIR / "volumes"
SSH_DIR = STATE_DIR / "ssh"
SSH_KEY = SSH_DIR / "id_ed25519"
BALANCER_DIR = STATE_DIR / "balancer"
LOCK_FILE = STATE_DIR / "materialise.lock"
APPLIED_FILE = STATE_DIR / "applied.json"
# How many requests moto_server has served that the watcher did not make (see moto_server.py).
MOTO_REQUESTS_FILE = STATE_DIR / "moto-requests"
# The lab CA and the certificate of the TLS front for moto (labkit.tlsfront).
TLS_DIR = STATE_DIR / "tls"

# Every Docker object the lab creates carries this label; lab-down removes exactly those.
LABEL = "railsdeploy.lab"
# ...and names the lab (the checkout's state dir) it belongs to, so two checkouts never mix.
OWNER = f"{LABEL}.owner={STATE_DIR}"
PREFIX = "rdlab"
NETWORK = f"{PREFIX}-net"

REGION = "us-west-2"
# The Docker network's subnet is the lab VPC's CIDR; the lab subnets are /24s inside it,
# one per availability zone. Addresses below .1.0 are the lab's own services.
VPC_CIDR = "10.213.0.0/16"
GATEWAY = "10.213.0.1"
# Three zones, as the PostgreSQL pair needs (its etcd witness lives in the third; docs/design/standby.md).
SUBNETS = {"us-west-2a": "10.213.1.0/24", "us-west-2b": "10.213.2.0/24", "us-west-2c": "10.213.3.0/24"}
REGISTRY_IP = "10.213.0.250"
BALANCER_IP = "10.213.0.251"
REGISTRY_PORT = 5000
# The lab's ECR: a registry at ECR's host name for moto's account and the lab region, serving the lab registry's
# images over TLS (lab CA) to whoever logs in with the token moto's GetAuthorizationToken hands out. The nodes resolve
# it and ECR's API endpoint (the TLS front on the gateway) through /etc/hosts, as DNS does for a real instance.
ECR_IP = "10.213.0.249"
ECR_ACCOUNT = "123456789012"  # moto's default account: every lab role and token belongs to it
ECR_REGISTRY = f"{ECR_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
ECR_API = f"api.ecr.{REGION}.amazonaws.com"
# CloudWatch Logs (Docker's awslogs driver on the nodes) and CloudWatch (metrics): their regional endpoints, which the
# nodes resolve to the TLS front for moto on the gateway as they resolve ECR's API.
LOGS_API = f"logs.{REGION}.amazonaws.com"
MONITORING_API = f"monitoring.{REGION}.amazonaws.com"

PROJECT_TAG = "railsdeploy-lab"
KEY_PAIR_NAME = "railsdeploy-lab"
# Dummy values moto accepts; no real account is ever involved.
ACCESS_KEY = "LABKEYIDNOTASECRET00"
SECRET_KEY = "labsecretkey-moto-accepts-any-value-0000"  # noqa: S105 - not a secret: moto takes any value

IMAGE_REPO = "railsdeploy-lab"


def image(name: str, tag: str = "latest") -> str:
    return f"{IMAGE_REPO}/{name}:{tag}"
