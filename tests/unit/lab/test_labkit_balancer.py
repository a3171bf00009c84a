"""Unit tests for lab/labkit/balancer.py: the ALB matcher and the haproxy configuration it renders.

No lab is needed. One test checks the rendered configuration with the real haproxy of the lab's
balancer image when that image is present locally (skipped otherwise).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from labkit import balancer, config
from labkit.balancer import Backend, HealthCheck, matcher_regex, render


def accepted(matcher: str) -> set[int]:
    """Every HTTP status code 100-599 the matcher's regex accepts."""
    rx = re.compile(matcher_regex(matcher))
    return {code for code in range(100, 600) if rx.search(str(code))}


# --- matcher_regex ----------------------------------------------------------------------------------


def test_matcher_single_code():
    assert matcher_regex("200") == "^(200)$"
    assert accepted("200") == {200}


def test_matcher_range_is_inclusive():
    assert accepted("200-299") == set(range(200, 300))
    assert accepted("301-301") == {301}


def test_matcher_list_and_whitespace():
    assert accepted("200,302") == {200, 302}
    assert accepted(" 200 , 204-206 ") == {200, 204, 205, 206}


def test_matcher_is_anchored():
    rx = re.compile(matcher_regex("200"))
    assert not rx.search("2000") and not rx.search("1200")


@pytest.mark.parametrize("bad", ["", "2xx", "200-", "-299", "20", "2000", "200;302", "200,,302", "abc", "299-200"])
def test_matcher_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="matcher"):
        matcher_regex(bad)


# --- render -----------------------------------------------------------------------------------------


def backend_lines(text: str) -> list[str]:
    lines = text.splitlines()
    return [ln.strip() for ln in lines[lines.index("backend targets") + 1:]]


def test_render_servers_and_health_check():
    check = HealthCheck(path="/up", interval=5, timeout=4, healthy=2, unhealthy=3, matcher="200-202")
    text = render(Backend(servers=[("i-aaa", "10.213.1.4", 80), ("i-bbb", "10.213.2.7", 3000)], check=check,
                          source="load balancer x, target group y"))
    lines = backend_lines(text)
    assert "server i-aaa 10.213.1.4:80 check" in lines
    assert "server i-bbb 10.213.2.7:3000 check" in lines
    assert [ln for ln in lines if ln.startswith("server ")] == [
        "server i-aaa 10.213.1.4:80 check", "server i-bbb 10.213.2.7:3000 check",
        "server i-aaa-fail-open 10.213.1.4:80 backup", "server i-bbb-fail-open 10.213.2.7:3000 backup"]
    # Fail open as an ALB does: with every checked server down, the unchecked backups - all of them - take the requests.
    assert "option allbackups" in lines
    assert "option httpchk" in lines
    assert "http-check send meth GET uri /up ver HTTP/1.1 hdr Host lab-balancer" in lines
    assert "http-check expect rstatus ^(200|201|202)$" in lines
    assert "timeout check 4s" in lines
    assert "default-server inter 5s fastinter 1s fall 3 rise 2" in lines
    assert text.startswith("# Written by the lab from load balancer x, target group y.\n")
    # The frontend is the ALB's :80 and sends everything to the target group.
    assert "    bind :80" in text and "    default_backend targets" in text


def test_render_empty_backend_has_no_servers():
    text = render(Backend())
    assert "no load balancer in the lab VPC yet" in text.splitlines()[0]
    assert not [ln for ln in backend_lines(text) if ln.startswith("server ")]
    # The defaults of an ALB target group's health check.
    assert "default-server inter 30s fastinter 1s fall 2 rise 5" in backend_lines(text)


def test_render_keeps_server_state_across_reloads():
    text = render(Backend())
    assert f"server-state-file {balancer.HAPROXY_DIR}/{balancer.STATE_NAME}" in text
    assert "load-server-state-from-file global" in text


def test_render_bad_matcher_raises():
    with pytest.raises(ValueError):
        render(Backend(check=HealthCheck(matcher="2xx")))


def test_forward_target_group_forms():
    fwd = balancer._forward_target_group
    assert fwd([{"Type": "forward", "TargetGroupArn": "arn:tg/a"}]) == "arn:tg/a"
    assert fwd([{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "arn:tg/b"}]}}]) == "arn:tg/b"
    assert fwd([{"Type": "redirect", "RedirectConfig": {}}, {"Type": "forward", "TargetGroupArn": "arn:tg/c"}]) \
        == "arn:tg/c"
    assert fwd([{"Type": "fixed-response"}]) is None
    assert fwd([]) is None


def _balancer_image_present() -> bool:
    if not shutil.which("docker"):
        return False
    ref = config.image("balancer")
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode == 0


@pytest.mark.skipif(not _balancer_image_present(), reason="the lab's balancer image is not built here")
@pytest.mark.parametrize("backend", [
    Backend(),
    Backend(servers=[("i-aaa", "10.213.1.4", 80), ("10.213.2.9", "10.213.2.9", 8080)],
            check=HealthCheck(path="/up", interval=5, timeout=4, healthy=2, unhealthy=2, matcher="200,301-302")),
], ids=["empty", "two-servers"])
def test_rendered_config_is_valid_for_haproxy(tmp_path, backend):
    (tmp_path / "haproxy.cfg").write_text(render(backend))
    proc = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--volume", f"{tmp_path}:/cfg:ro", "--entrypoint", "haproxy",
         config.image("balancer"), "-c", "-f", "/cfg/haproxy.cfg"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"haproxy -c rejected the rendered configuration:\n{proc.stdout}\n{proc.stderr}"


def _backend(*names, healthy=2):
    servers = [(n, f"10.213.1.{i + 4}", 80) for i, n in enumerate(names)]
    return balancer.Backend(servers=servers, check=balancer.HealthCheck(path="/up", healthy=healthy))


def test_new_target_gets_no_traffic_until_it_passed_healthy_checks_in_a_row():
    results = iter([True, False, True, True])
    pending: dict[str, int] = {}
    cfg = ""
    admitted = []
    for _ in range(4):
        backend = balancer.admit(_backend("i-new"), cfg, pending, check=lambda *_: next(results))
        admitted.append([s[0] for s in backend.servers])
        cfg = balancer.render(backend)
    # pass, fail (counter resets), pass, pass -> admitted on the 4th check only
    assert admitted == [[], [], [], ["i-new"]]
    assert pending == {}


def test_serving_target_stays_and_deregistered_pending_target_is_forgotten():
    serving = balancer.render(_backend("i-a"))
    pending = {"i-gone": 1}
    backend = balancer.admit(_backend("i-a"), serving, pending, check=lambda *_: False)
    assert [s[0] for s in backend.servers] == ["i-a"]
    assert pending == {}
