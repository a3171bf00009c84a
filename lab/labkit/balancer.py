"""The lab's load balancer: haproxy following the ALB's listener, target group and health check.

Like an ALB it fails open: when every registered target is unhealthy, requests go to all of them.

Each pass reads the lab VPC's Application Load Balancer from moto, renders an haproxy
configuration whose servers are the target group's registered targets (health-checked
on the target group's path, interval and thresholds) and reloads haproxy when it changed.
A master-worker reload lets old workers finish in-flight requests, as ALB draining does.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from . import aws, config
from .sh import docker, log

CONTAINER = f"{config.PREFIX}-balancer"
CFG_NAME = "haproxy.cfg"
PENDING_NAME = "pending.json"
SERVER_RE = re.compile(r"^    server (\S+) (\S+) check$", re.M)
STATE_NAME = "server-state"
FAIL_OPEN_SUFFIX = "-fail-open"  # the unchecked backup twin of each target (see render)
HAPROXY_DIR = "/etc/haproxy/lab"


@dataclass
class HealthCheck:
    path: str = "/"
    interval: int = 30
    timeout: int = 5
    healthy: int = 5
    unhealthy: int = 2
    matcher: str = "200"


@dataclass
class Backend:
    servers: list[tuple[str, str, int]] = field(default_factory=list)  # (name, ip, port)
    check: HealthCheck = field(default_factory=HealthCheck)
    source: str = "no load balancer in the lab VPC yet"


def matcher_regex(matcher: str) -> str:
    """ALB success codes ('200', '200-299', '200,302') as an anchored regex of status codes."""
    parts = []
    for item in matcher.split(","):
        item = item.strip()
        if re.fullmatch(r"\d{3}", item):
            parts.append(item)
        elif (m := re.fullmatch(r"(\d{3})-(\d{3})", item)) and int(m[1]) <= int(m[2]):
            lo, hi = int(m[1]), int(m[2])
            parts.extend(str(code) for code in range(lo, hi + 1))
        else:
            raise ValueError(f"unsupported health check matcher {matcher!r}")
    return "^(" + "|".join(parts) + ")$"


def render(backend: Backend) -> str:
    hc = backend.check
    lines = [
        f"# Written by the lab from {backend.source}.",
        "global",
        "    log stdout format raw local0",
        "    stats socket /run/haproxy/admin.sock mode 600 level admin",
        f"    server-state-file {HAPROXY_DIR}/{STATE_NAME}",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    load-server-state-from-file global",
        # Like an ALB: a failed connection is an error to the client, not silently retried.
        "    retries 0",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "frontend alb",
        "    bind :80",
        "    default_backend targets",
        "backend targets",
        "    balance roundrobin",
        # An ALB whose targets are all unhealthy routes to all of them ("fails open"): each target is also a backup
        # server without a health check, and haproxy sends to the backups (all of them) only when no checked server
        # is up.
        "    option allbackups",
        "    option httpchk",
        f"    http-check send meth GET uri {hc.path} ver HTTP/1.1 hdr Host lab-balancer",
        f"    http-check expect rstatus {matcher_regex(hc.matcher)}",
        f"    timeout check {hc.timeout}s",
        f"    default-server inter {hc.interval}s fastinter 1s fall {hc.unhealthy} rise {hc.healthy}",
    ]
    for name, ip, port in backend.servers:
        lines.append(f"    server {name} {ip}:{port} check")
    for name, ip, port in backend.servers:
        lines.append(f"    server {name}{FAIL_OPEN_SUFFIX} {ip}:{port} backup")
    return "\n".join(lines) + "\n"


def _forward_target_group(actions: list[dict]) -> str | None:
    for action in actions:
        if action.get("Type") != "forward":
            continue
        if action.get("TargetGroupArn"):
            return action["TargetGroupArn"]
        groups = action.get("ForwardConfig", {}).get("TargetGroups", [])
        if groups:
            return groups[0]["TargetGroupArn"]
    return None


def desired_backend(vpc_id: str) -> Backend:
    elb = aws.client("elbv2")
    lbs = sorted((lb for lb in aws.paginate(elb, "describe_load_balancers", "LoadBalancers")
                  if lb.get("VpcId") == vpc_id and lb.get("Type", "application") == "application"),
                 key=lambda lb: lb["LoadBalancerName"])
    if not lbs:
        return Backend()
    lb = lbs[0]
    listeners = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    tg_arn = next((arn for ls in listeners if ls.get("Port") == 80
                   for arn in [_forward_target_group(ls.get("DefaultActions", []))] if arn), None)
    if tg_arn is None:
        return Backend(source=f"load balancer {lb['LoadBalancerName']} (no HTTP :80 forward listener)")
    tg = elb.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"][0]
    check = HealthCheck(
        path=tg.get("HealthCheckPath", "/"),
        interval=int(tg.get("HealthCheckIntervalSeconds", 30)),
        timeout=int(tg.get("HealthCheckTimeoutSeconds", 5)),
        healthy=int(tg.get("HealthyThresholdCount", 5)),
        unhealthy=int(tg.get("UnhealthyThresholdCount", 2)),
        matcher=tg.get("Matcher", {}).get("HttpCode", "200"),
    )
    targets = elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
    ec2 = aws.client("ec2")
    ids = [t["Target"]["Id"] for t in targets if t["Target"]["Id"].startswith("i-")]
    running = {}
    if ids:
        for res in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
            for inst in res["Instances"]:
                if inst["State"]["Name"] in ("pending", "running"):
                    running[inst["InstanceId"]] = inst.get("PrivateIpAddress")
    servers = []
    for t in sorted(targets, key=lambda t: t["Target"]["Id"]):
        target_id = t["Target"]["Id"]
        port = int(t["Target"].get("Port") or tg.get("Port") or 80)
        ip = running.get(target_id) if target_id.startswith("i-") else target_id
        if ip:  # AWS takes terminated instances out of a target group; stopped ones get no traffic
            servers.append((target_id, ip, port))
    return Backend(servers=servers, check=check,
                   source=f"load balancer {lb['LoadBalancerName']}, target group {tg['TargetGroupName']}")


def probe(ip: str, port: int, check: HealthCheck) -> bool:
    """One health check of a target, as the load balancer makes it."""
    try:
        with urllib.request.urlopen(f"http://{ip}:{port}{check.path}", timeout=min(check.timeout, 2)) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError:
        return False
    return re.match(matcher_regex(check.matcher), str(status)) is not None


def admit(backend: Backend, current_cfg: str, pending: dict[str, int], check=probe) -> Backend:
    """Like an ALB, send nothing to a newly registered target until it passed `healthy` checks
    in a row. Targets already in haproxy stay (haproxy's own checks judge them from then on).
    `pending` (target -> passes so far) is updated in place."""
    serving = set(SERVER_RE.findall(current_cfg))
    admitted = []
    for name, ip, port in backend.servers:
        if (name, f"{ip}:{port}") in serving:
            admitted.append((name, ip, port))
            pending.pop(name, None)
            continue
        passes = pending.get(name, 0) + 1 if check(ip, port, backend.check) else 0
        if passes >= backend.check.healthy:
            admitted.append((name, ip, port))
            pending.pop(name, None)
        else:
            pending[name] = passes
    for name in set(pending) - {s[0] for s in backend.servers}:
        del pending[name]
    return Backend(servers=admitted, check=backend.check, source=backend.source)


def targets_pending() -> bool:
    """Whether a registered target is still being health-checked before it is admitted (see admit)."""
    try:
        return bool(json.loads((config.BALANCER_DIR / PENDING_NAME).read_text()))
    except (OSError, ValueError):
        return False


_last_desired: list[Backend] = []


def sync(vpc_id: str, reuse_desired: bool = False) -> bool:
    """Make haproxy follow the target group; True when it was reloaded. With `reuse_desired`, the target group
    read by the previous call stands (the watcher passes it when moto served no request since)."""
    cfg = config.BALANCER_DIR / CFG_NAME
    pending_file = config.BALANCER_DIR / PENDING_NAME
    try:
        pending = json.loads(pending_file.read_text())
    except (FileNotFoundError, ValueError):
        pending = {}
    current = cfg.read_text() if cfg.exists() else ""
    if not (reuse_desired and _last_desired):
        _last_desired[:] = [desired_backend(vpc_id)]
    text = render(admit(_last_desired[0], current, pending))
    config.BALANCER_DIR.mkdir(parents=True, exist_ok=True)
    pending_file.write_text(json.dumps(pending))
    if current == text:
        return False
    # Keep health states across the reload: a target known to be down stays down.
    docker("exec", CONTAINER, "sh", "-c",
           f"echo 'show servers state' | socat stdio /run/haproxy/admin.sock > {HAPROXY_DIR}/{STATE_NAME}.new"
           f" && mv {HAPROXY_DIR}/{STATE_NAME}.new {HAPROXY_DIR}/{STATE_NAME}", check=False)
    tmp = cfg.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(cfg)
    docker("kill", "--signal", "USR2", CONTAINER, check=False)
    log(f"balancer: {text.count('    server ')} target(s), reloaded")
    return True
