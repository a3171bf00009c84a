"""The lab balancer (haproxy) follows the ALB through the real ELBv2 API: the HTTP :80 listener's target
group, its registered targets and its health check.

Two instances each serve HTTP on port 80 with ``python3 -m http.server``: ``/`` answers the node's
name and ``/up`` (a file) answers 200 while the file exists — the target group's health check path.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from lablib.lab import Cloud, Lab, labconfig, unique

pytestmark = pytest.mark.lab

INTERVAL, HEALTHY, UNHEALTHY = 5, 2, 2
SLACK = 5  # seconds beyond interval x threshold: the watcher's pass, haproxy's reload, our polling
SERVE = ("sudo mkdir -p /srv/www && hostname | sudo tee /srv/www/index.html >/dev/null"
         " && echo ok | sudo tee /srv/www/up >/dev/null"
         " && sudo sh -c 'cd /srv/www && nohup python3 -m http.server 80 --directory /srv/www"
         " >/dev/null 2>&1 </dev/null &'")


def fetch(url: str) -> str:
    """The body of a GET (a node's name), or ``HTTP <code>`` / ``error: …`` when there is none."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except OSError as exc:
        return f"error: {exc}"


def answers(lab: Lab, n: int) -> list[str]:
    return [fetch(lab.balancer_url + "/") for _ in range(n)]


def wait_answers(lab: Lab, want: set[str], what: str, timeout: float, n: int = 12) -> float:
    """Wait until ``n`` requests in a row are answered by exactly the names in ``want``; return the wait."""
    start = time.monotonic()
    lab.wait_until(lambda: set(answers(lab, n)) == want, timeout, what, interval=0.2)
    return time.monotonic() - start


@pytest.fixture
def alb_name(lab: Lab) -> str:
    """This test's ALB's name. The lab has one balancer: it follows the lab VPC's ALB whose name sorts first, so this
    test's must sort before every other (the environment's, ``<project>-<environment>``, may appear meanwhile: `make
    test` runs this test beside the provision scenario). Don't fight another test's."""
    name = unique("alb")
    before = sorted(lb["LoadBalancerName"] for lb in lab.elbv2.describe_load_balancers()["LoadBalancers"]
                    if lb.get("VpcId") == lab.vpc_id and lb["LoadBalancerName"] < name)
    if before:
        pytest.fail(f"another load balancer in the lab VPC sorts before {name} ({', '.join(before)}): the lab's single "
                    "balancer follows only that one, so this test cannot prove anything. Run it on a lab of its own "
                    "(`make lab-down` first; `make integration` brings one up).")
    return name


def test_balancer_follows_targets_and_health(lab: Lab, cloud: Cloud, alb_name: str):
    name_a, name_b = unique("web-a"), unique("web-b")
    a = cloud.run_instance(name_a, "us-west-2a")
    b = cloud.run_instance(name_b, "us-west-2b")
    ip_a, ip_b = a["PrivateIpAddress"], b["PrivateIpAddress"]
    lab.materialise()
    for name, ip in ((name_a, ip_a), (name_b, ip_b)):
        lab.wait_until(lambda ip=ip: lab.ssh(ip, "true", timeout=15).returncode == 0, 60, f"ssh to {name}")
        lab.ssh_ok(ip, SERVE)
        lab.wait_until(lambda ip=ip: lab.ssh(ip, "curl -fsS http://127.0.0.1/up").returncode == 0, 20,
                       f"http.server on {name}")
        assert lab.ssh_ok(ip, "curl -fsS http://127.0.0.1/").strip() == name

    _, tg = cloud.create_alb(alb_name, health_check_path="/up", interval=INTERVAL, healthy=HEALTHY,
                             unhealthy=UNHEALTHY)
    elb = lab.elbv2

    # No target registered yet: the ALB answers 503.
    lab.materialise()
    wait_answers(lab, {"HTTP 503"}, "503 from an empty target group", 15, n=3)
    cfg = (labconfig.BALANCER_DIR / "haproxy.cfg").read_text()
    assert "uri /up " in cfg and f"inter {INTERVAL}s" in cfg and f"rise {HEALTHY}" in cfg \
        and f"fall {UNHEALTHY}" in cfg, f"the balancer does not use the target group's health check:\n{cfg}"

    # A only.
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": a["InstanceId"]}])
    lab.materialise()
    wait_answers(lab, {name_a}, f"only {name_a} answering", 15)

    # A and B: round robin over both.
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": b["InstanceId"]}])
    lab.materialise()
    wait_answers(lab, {name_a, name_b}, f"both {name_a} and {name_b} answering over 20 requests", 20, n=20)

    # B's health check fails: it leaves rotation within interval x unhealthy threshold (+ slack).
    lab.ssh_ok(ip_b, "sudo rm /srv/www/up")
    limit = INTERVAL * UNHEALTHY + SLACK
    took = wait_answers(lab, {name_a}, f"{name_b} out of rotation after its /up fails", limit)
    assert took <= limit
    print(f"{name_b} left rotation {took:.1f}s after its health check started failing (limit {limit}s)")
    # ... and comes back once healthy again (healthy threshold x interval, + slack).
    lab.ssh_ok(ip_b, "echo ok | sudo tee /srv/www/up >/dev/null")
    wait_answers(lab, {name_a, name_b}, f"{name_b} back in rotation once /up answers", INTERVAL * HEALTHY + SLACK,
                 n=20)

    # Both health checks fail: like an ALB whose targets are all unhealthy, the balancer fails open and routes to
    # all of them (a 503 here would add a health-check cycle to every outage the drills measure).
    for ip in (ip_a, ip_b):
        lab.ssh_ok(ip, "sudo rm /srv/www/up")
    lab.wait_until(lambda: lab.balancer_servers_down() >= {a["InstanceId"], b["InstanceId"]},
                   INTERVAL * UNHEALTHY + SLACK, "both targets marked down by the health check")
    wait_answers(lab, {name_a, name_b}, "both targets answering while both are unhealthy (fail open)", 10, n=20)
    for ip in (ip_a, ip_b):
        lab.ssh_ok(ip, "echo ok | sudo tee /srv/www/up >/dev/null")
    lab.wait_until(lambda: not lab.balancer_servers_down(), INTERVAL * HEALTHY + SLACK, "both targets healthy again")

    # Deregister A: only B.
    elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": a["InstanceId"]}])
    lab.materialise()
    wait_answers(lab, {name_b}, f"only {name_b} answering after {name_a} is deregistered", 15)

    # Deregister all: 503.
    elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": b["InstanceId"]}])
    lab.materialise()
    wait_answers(lab, {"HTTP 503"}, "503 once every target is deregistered", 15, n=5)
