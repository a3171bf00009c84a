"""Deploys under continuous load through the lab balancer, with 3 rails nodes, in one run.

(a) the old shell scripts' method (bench/scripts_method.yml: pull, stop, run, node after node); (b) deploy_rails.yml
to the 3 nodes, switching release; (c) deploy_rails.yml again with the same release (a no-op), then status.yml and
logs.yml on the 3 nodes; (e) a release that fails its health check at the second node (the first node is given
APP_BROKEN=0 by an inventory of its own), which the automatic rollback undoes; (f) a rollback of the 3 nodes to the
release before (retained, no pull); (d) deploy_rails.yml to 1 node, switching release; (g) the real Rails app
(lab/images/railsapp) deployed to the 3 nodes, then its release 2 as in (b). lab/loadgen.py sends requests to the
balancer's /version throughout the deploys. Prints `scripts_method_failed_requests`, `scripts_method_error_seconds`,
`deploy_failed_requests`, `deploy_requests_total`, `deploy_seconds_3`, `deploy_seconds_1`, `deploy_ratio_3_to_1`,
`noop_deploy_seconds`, `noop_deploy_changed`, `status_seconds_3` (the goal: under 10 s), `status_changed`,
`logs_seconds_3`, `auto_rollback_seconds`, `auto_rollback_failed_requests`, `rollback_seconds_3`,
`rollback_failed_requests`, `rails_app_deploy_seconds_3`, `rails_app_deploy_failed_requests`,
`rails_app_deploy_floor_seconds_3`, `rails_app_deploy_floor_ratio_3` as each is measured; details go to stderr as `#
` lines.

The physical floor of (b), measured in the same run: `deploy_floor_seconds_3` = the release's image pulled on the 3
nodes at once (`docker pull` on each, before (b), which then pulls it again) + the migration command of the release
run once on a node + for each of the 3 nodes, one after another, the same image started as the deploy starts it and
polled on its health path until it answers 200 (measured directly on a node, best of 3) + the drain (each node's, as
the deploy's own summary reports it: it ends when the proxy's old worker has exited). The proxy's switch (a reload
through haproxy's master socket) is not measured apart: it is in what the deploy spends beyond the floor.
`deploy_floor_ratio_3` = `deploy_seconds_3` / `deploy_floor_seconds_3`.

Before (b) and (d) the release being deployed is removed from the nodes it goes to, so both deploys pull
(in parallel for (b)) as a deploy of a new release does. Setup: the lab's environment is provisioned with
3 rails nodes, PostgreSQL deployed, the database seeded if it is empty and release 1 deployed everywhere.
Afterwards the third node (rails2003) is destroyed and the other nodes serve one release again (the one
they served before, or 1).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))
import loadgen  # noqa: E402  (lab/loadgen.py)

BALANCER = "rdlab-balancer"  # lab/labkit/balancer.py CONTAINER
THIRD_NODE = "rails2003"
ONE_NODE = "rails2001"
PLAYBOOK_TIMEOUT = 1200


def note(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def figure(name: str, value) -> None:
    print(f"{name}: {value}", flush=True)


class Failed(RuntimeError):
    pass


def ansible(argv: list[str], *, what: str, ok_rc=(0,)) -> tuple[subprocess.CompletedProcess, float]:
    """Run ansible-playbook / ansible in the repo; (process, seconds). Fails unless rc in ok_rc."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env, timeout=PLAYBOOK_TIMEOUT)
    elapsed = time.monotonic() - started
    if proc.returncode not in ok_rc:
        sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-3000:])
        raise Failed(f"{what} failed (rc {proc.returncode})")
    return proc, elapsed


def playbook(path: str, *extra: str, what: str, ok_rc=(0,)) -> tuple[subprocess.CompletedProcess, float]:
    return ansible(["ansible-playbook", path, *extra], what=what, ok_rc=ok_rc)


def recap_changed(output: str) -> int:
    """Sum of changed= over the hosts of the (last) PLAY RECAP."""
    recap = output.rsplit("PLAY RECAP", 1)
    if len(recap) != 2:
        raise Failed("no PLAY RECAP in the playbook's output")
    counts = re.findall(r"^\S+\s+:\s+ok=\d+\s+changed=(\d+)", recap[1], re.M)
    if not counts:
        raise Failed("no host lines in the PLAY RECAP")
    return sum(int(c) for c in counts)


def rails_nodes() -> dict[str, str]:
    """name -> private IP of the rails group's hosts, from the lab inventory."""
    proc, _ = ansible(["ansible-inventory", "--list"], what="ansible-inventory")
    data = json.loads(proc.stdout)
    hostvars = data.get("_meta", {}).get("hostvars", {})
    def plain(value):  # ansible-inventory marks inventory-plugin values as unsafe: {"__ansible_unsafe": "..."}
        return value.get("__ansible_unsafe") if isinstance(value, dict) else value

    return {h: plain(hostvars[h]["private_ip_address"]) for h in sorted(data.get("rails", {}).get("hosts", []))}


def get(url: str, timeout: float = 2.0) -> tuple[int | None, str, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read(200).decode("utf-8", "replace").strip(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, "", dict(exc.headers or {})
    except OSError as exc:
        return None, f"{type(exc).__name__}: {exc}", {}


def node_versions(nodes: dict[str, str]) -> dict[str, str | None]:
    """What each node answers on its load balancer port for /version (None: no answer)."""
    answers = {}
    for name, ip in nodes.items():
        status, body, _ = get(f"http://{ip}/version")
        answers[name] = body if status == 200 else None
    return answers


def balancer_servers() -> dict[str, str]:
    """The lab balancer's targets (target id -> haproxy status UP/DOWN/...), from its stats socket (not the backup
    servers that stand for a target group with no healthy target, `<id>-fail-open`)."""
    proc = subprocess.run(
        ["docker", "exec", BALANCER, "sh", "-c", "echo 'show stat' | socat stdio /run/haproxy/admin.sock"],
        capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        return {}
    rows = csv.DictReader(io.StringIO(proc.stdout.lstrip("# ")))
    return {r["svname"]: r["status"] for r in rows if r.get("pxname") == "targets"
            and r.get("svname") not in ("FRONTEND", "BACKEND") and not r["svname"].endswith("-fail-open")}


def wait_serving(nodes: dict[str, str], release: str | None, timeout: float = 180) -> None:
    """Every node answers (release, if given) on port 80 and the balancer sends traffic to all of them."""
    deadline = time.monotonic() + timeout
    while True:
        versions = node_versions(nodes)
        servers = balancer_servers()
        nodes_ok = all(v is not None and (release is None or v == release) for v in versions.values())
        up = [s for s, status in servers.items() if status == "UP"]
        if nodes_ok and len(servers) == len(nodes) and len(up) == len(nodes):
            return
        if time.monotonic() >= deadline:
            cfg = REPO / "lab/.state/balancer/haproxy.cfg"
            source = cfg.read_text().splitlines()[0] if cfg.exists() else "no balancer configuration"
            raise Failed(f"nodes do not all serve release {release} through the balancer within {timeout:.0f} s: "
                         f"nodes {versions}, balancer {servers} ({source.lstrip('# ')})")
        time.sleep(1)


@contextlib.contextmanager
def load(label: str, url: str) -> Iterator[dict]:
    """lab/loadgen.py against url while the block runs; the yielded dict receives its summary."""
    with loadgen.in_background(url, warmup=2) as summary:  # warm up: the counts start from a serving system
        yield summary
        time.sleep(2)  # and end on one
    if summary:
        answers = {body: seen["count"] for body, seen in summary.get("bodies", {}).items()}
        note(f"{label}: {summary['total']} requests, {summary['failed']} failed "
             f"{summary.get('failures_by_kind', {})}, {summary['error_seconds']} error second(s), answers {answers}")


def remove_image(hosts: str, release: str, repository: str = "{{ railsdeploy_app_image }}") -> None:
    """The release's image is not on these nodes (so the next deploy of it pulls)."""
    ansible(["ansible", hosts, "--become", "-m", "community.docker.docker_image_remove",
             "-a", f"name={repository}:{release}"], what=f"removing image {release} on {hosts}")


def remove_scripts_containers() -> None:
    """No scripts-style container `rails` on the rails nodes (it holds port 80, which the deploy's proxy needs)."""
    ansible(["ansible", "rails", "--become", "-m", "community.docker.docker_container",
             "-a", "name=rails state=absent"], what="removing the scripts-style containers")


def setup() -> tuple[dict[str, str], str | None]:
    before = rails_nodes()
    served = {v for v in node_versions(before).values() if v}
    start_release = served.pop() if len(served) == 1 else None
    note(f"before: rails nodes {sorted(before)}, serving {start_release or 'no single release'}")
    _, seconds = playbook("playbooks/provision.yml", "-e", "railsdeploy_rails_count=3", what="provision (3 nodes)")
    note(f"provision of 3 rails nodes: {seconds:.1f} s")
    playbook("playbooks/deploy_postgres.yml", what="deploy_postgres.yml")
    proc, _ = playbook("playbooks/seed.yml", "-e", "rails_app_release=1", what="seed.yml", ok_rc=(0, 2))
    if proc.returncode != 0:
        if "already holds the app" not in " ".join(proc.stdout.split()):  # the message may be wrapped
            sys.stderr.write(proc.stdout[-6000:])
            raise Failed("seed.yml failed")
        note("seed.yml: the database was seeded before (refused, as it should)")
    # A scripts-style container left by an interrupted run would hold port 80.
    remove_scripts_containers()
    playbook("playbooks/deploy_rails.yml", "--limit", "rails", "-e", "rails_app_release=1",
             what="deploy_rails.yml release 1 (setup)")
    nodes = rails_nodes()
    if len(nodes) != 3:
        raise Failed(f"expected 3 rails nodes, the inventory has {sorted(nodes)}")
    wait_serving(nodes, "1")
    return nodes, start_release


def scripts_method(nodes: dict[str, str], url: str) -> None:
    """(a) pull, stop, run, node after node; the load runs until every node serves again through the balancer."""
    with load("scripts_method", url) as summary:
        _, seconds = playbook("bench/scripts_method.yml", "-e", "scripts_method_release=2",
                              what="the old shell scripts' method")
        note(f"old scripts' method: {seconds:.1f} s for {len(nodes)} nodes")
        wait_serving(nodes, "2")
    figure("scripts_method_failed_requests", summary["failed"])
    figure("scripts_method_error_seconds", summary["error_seconds"])
    if summary.get("first_failure"):
        note(f"old scripts' method: failures from {summary['first_failure']:.1f} to {summary['last_failure']:.1f} "
             f"({summary['last_failure'] - summary['first_failure']:.1f} s)")


def node_slot(name: str) -> str | None:
    """The slot the node's proxy serves from, as the node itself sees it (the proxy names it only to the node's own
    requests)."""
    probe = ("import urllib.request as u; "
             "print(u.urlopen('http://127.0.0.1/version', timeout=5).headers.get('X-Railsdeploy-Slot', ''))")
    proc = subprocess.run(["docker", "exec", name, "python3", "-c", probe], capture_output=True, text=True, timeout=30)
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def restore(nodes: dict[str, str]) -> None:
    """The nodes back in the deploy's layout: the scripts-style container gone, deploy_rails.yml starts afresh."""
    remove_scripts_containers()
    remove_image("rails", "2")
    _, seconds = playbook("playbooks/deploy_rails.yml", "--limit", "rails", "-e", "rails_app_release=1",
                          what="deploy_rails.yml release 1 after the old shell scripts' method")
    note(f"deploy_rails.yml recovered the nodes from the old shell scripts' layout in {seconds:.1f} s")
    wait_serving(nodes, "1")
    for name, ip in nodes.items():
        status, body, _ = get(f"http://{ip}/version")
        slot = node_slot(name)
        if status != 200 or body != "1" or slot not in ("blue", "green"):
            raise Failed(f"{name} does not serve release 1 through its proxy after the restore "
                         f"(HTTP {status}, {body!r}, slot {slot})")


def on_node(node: str, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """A command inside the lab node's container (its own dockerd), as the deploy runs it over SSH."""
    return subprocess.run(["docker", "exec", node, *argv], capture_output=True, text=True, timeout=timeout)


def serving_container(node: str) -> str:
    """The app container (slot) that serves on ``node``."""
    ps = on_node(node, ["docker", "ps", "--filter", "label=railsdeploy.release", "--format", "{{.Names}}"])
    serving = [n for n in ps.stdout.split() if n.endswith(("-blue", "-green"))]
    if not serving:
        raise Failed(f"no app container serves on {node}")
    return serving[0]


def image_ref(node: str, release: str) -> str:
    """The app image's reference for ``release``: the repository the node's serving container runs, with its tag."""
    proc = on_node(node, ["docker", "inspect", "--format", "{{.Config.Image}}", serving_container(node)])
    repository = proc.stdout.strip().rsplit(":", 1)[0] if proc.returncode == 0 else ""
    if not repository:
        raise Failed(f"the image of the serving container on {node} is not known: {proc.stderr.strip()}")
    return f"{repository}:{release}"


def pull_in_parallel(nodes: dict[str, str], ref: str) -> float:
    """Seconds for `docker pull` of ``ref`` on every node at once (the image is not on them)."""
    started = time.monotonic()
    procs = [subprocess.Popen(["docker", "exec", node, "docker", "pull", "-q", ref], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for node in nodes]
    errors = [p.communicate(timeout=PLAYBOOK_TIMEOUT)[1] for p in procs]
    elapsed = time.monotonic() - started
    if any(p.returncode for p in procs):
        raise Failed(f"docker pull {ref} failed on a node: {errors}")
    return elapsed


# Run on the node (python3 of the node): start the serving container's twin from its `docker inspect`, poll the
# health path every 20 ms until 200, print the seconds, remove it. argv: inspect JSON, image, port, path, mode.
# Mode "boot": started detached, published on a free loopback port; "migrate": run to its end with the migration
# command instead of the image's (the deploy's app_command), its exit code checked.
FLOOR_PROBE = r"""
import json, subprocess, sys, time, urllib.request
info, image, port, path, mode = json.loads(sys.argv[1])[0], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
cfg, host = info["Config"], info["HostConfig"]
args = ["docker", "run", "--name", "railsdeploy-floor"]
for e in cfg.get("Env") or []:
    args += ["--env", e]
for m in host.get("Mounts") or []:
    ro = ",readonly" if m.get("ReadOnly") else ""
    args += ["--mount", f"type=bind,source={m['Source']},target={m['Target']}{ro}"]
cmd = list(cfg.get("Cmd") or [])
if mode == "boot":
    args += ["--detach", "--publish", f"127.0.0.1:{port}:{sys.argv[6]}"]
else:
    args += ["--rm"]
    cmd = cmd[:3] + json.loads(sys.argv[6])  # the wrapper (-c, script, secrets file), then the migration command
args += ["--entrypoint", (cfg.get("Entrypoint") or ["/bin/sh"])[0], image] + cmd
subprocess.run(["docker", "rm", "-f", "railsdeploy-floor"], capture_output=True)
started = time.monotonic()
proc = subprocess.run(args, capture_output=True, text=True)
if proc.returncode != 0:
    sys.exit(f"docker run failed: {proc.stderr.strip()[-500:]}")
if mode == "boot":
    while time.monotonic() - started < 120:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1).status == 200:
                break
        except OSError:
            pass
        time.sleep(0.02)
    else:
        sys.exit("not healthy within 120 s")
print(f"{time.monotonic() - started:.3f}")
subprocess.run(["docker", "rm", "-f", "railsdeploy-floor"], capture_output=True)
"""


def floor_probe(node: str, ref: str, mode: str, last: str) -> float:
    """Seconds for the serving container's twin on ``node`` (FLOOR_PROBE)."""
    inspect = on_node(node, ["docker", "inspect", serving_container(node)])
    proc = on_node(node, ["python3", "-c", FLOOR_PROBE, inspect.stdout, ref, "39990", "/up", mode, last])
    if proc.returncode != 0:
        raise Failed(f"floor probe ({mode}) on {node}: {proc.stderr.strip()[-500:]}")
    return float(proc.stdout.strip())


def floor(proc: subprocess.CompletedProcess, nodes: dict[str, str], ref: str, pull: float, label: str) -> float:
    """The physical floor of the deploy ``proc`` of ``ref`` (now serving) to ``nodes``: the parallel pull (measured
    before it) + the migration + for each node the boot to healthy (best of 3, on a node) + its drain (the deploy's
    summary)."""
    drained = drains(proc.stdout)
    if sorted(drained) != sorted(nodes):
        raise Failed(f"the deploy's summary gives the drain of {sorted(drained)}, not of {sorted(nodes)}")
    migrate = floor_probe(ONE_NODE, ref, "migrate", json.dumps(["bin/rails", "db:migrate"]))
    boot = min(floor_probe(ONE_NODE, ref, "boot", "3000") for _ in range(3))
    note(f"floor of {label}: pull on {len(nodes)} nodes at once {pull:.1f} s + migration {migrate:.1f} s + "
         f"{len(nodes)} x boot to healthy {boot:.2f} s + drains "
         f"{', '.join(f'{n} {d:g} s' for n, d in sorted(drained.items()))}")
    return pull + migrate + sum(boot + d for d in drained.values())


def drains(output: str) -> dict[str, float]:
    """Each node's drain, from the deploy's summary (the railsdeploy.aws.concise callback's DEPLOY SUMMARY)."""
    summary = output.rsplit("DEPLOY SUMMARY", 1)
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(r"^(\S+): release \S+ -> \S+ in [\d.?]+ s, drained in ([\d.]+) s", summary[-1], re.M)}


def main() -> int:
    os.environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    os.environ.setdefault("RAILSDEPLOY_LAB_DIR", str(REPO / "lab"))
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    state = json.loads((REPO / "lab/.state/lab.json").read_text())
    url = f"{state['balancer_url']}/version"
    failed = None
    start_release = None
    try:
        nodes, start_release = setup()
        scripts_method(nodes, url)
        restore(nodes)

        # The floor's pull: release 2 on the 3 nodes at once, then removed again for (b).
        ref = image_ref(ONE_NODE, "2")
        pull_3 = pull_in_parallel(nodes, ref)
        remove_image("rails", "2")

        # (b) release 1 -> 2 on the 3 nodes; the image is pulled on all of them at once.
        with load("deploy_3", url) as summary:
            proc, deploy_3 = playbook("playbooks/deploy_rails.yml", "--limit", "rails", "-e", "rails_app_release=2",
                                      what="deploy_rails.yml release 2 to 3 nodes")
        figure("deploy_failed_requests", summary["failed"])
        figure("deploy_requests_total", summary["total"])
        figure("deploy_seconds_3", f"{deploy_3:.1f}")
        wait_serving(nodes, "2", timeout=60)

        # The floor of (b), measured on the nodes now serving release 2.
        floor_3 = floor(proc, nodes, ref, pull_3, "(b)")
        figure("deploy_floor_seconds_3", f"{floor_3:.1f}")
        figure("deploy_floor_ratio_3", f"{deploy_3 / floor_3:.2f}")

        # (c) the same release again.
        with load("noop", url) as summary:
            proc, noop = playbook("playbooks/deploy_rails.yml", "--limit", "rails", "-e", "rails_app_release=2",
                                  what="deploy_rails.yml release 2 again (no-op)")
        figure("noop_deploy_seconds", f"{noop:.1f}")
        figure("noop_deploy_changed", recap_changed(proc.stdout))

        # (c2) what an operator reads between deploys: status.yml (read-only) and logs.yml, on the 3 nodes.
        proc, status = playbook("playbooks/status.yml", what="status.yml on 3 nodes")
        figure("status_seconds_3", f"{status:.1f}")
        figure("status_changed", recap_changed(proc.stdout))
        _, logs = playbook("playbooks/logs.yml", "-e", "lines=20", what="logs.yml on 3 nodes")
        figure("logs_seconds_3", f"{logs:.1f}")

        # (e) release `broken`, healthy on the first node only: the roll stops at the second, the first goes back.
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as heal:
            heal.write(f'all:\n  hosts:\n    {ONE_NODE}:\n      rails_app_env: {{APP_BROKEN: "0"}}\n')
            heal.flush()
            with load("auto_rollback", url) as summary:
                proc, auto_rollback = playbook(
                    "playbooks/deploy_rails.yml", "-i", "inventories/lab", "-i", heal.name, "--limit", "rails",
                    "-e", "rails_app_release=broken", "-e", "rails_app_health_timeout=10",
                    what="deploy_rails.yml release broken (stops at the second node)", ok_rc=(2,))
        if f"Went back: {ONE_NODE} to release 2." not in " ".join(proc.stdout.split()):
            sys.stderr.write(proc.stdout[-4000:])
            raise Failed(f"the stopped deploy did not send {ONE_NODE} back to release 2")
        figure("auto_rollback_seconds", f"{auto_rollback:.1f}")
        figure("auto_rollback_failed_requests", summary["failed"])
        wait_serving(nodes, "2", timeout=60)

        # (f) release 2 -> 1 on the 3 nodes: a rollback (release 1 is retained on every node, nothing is pulled).
        with load("rollback_3", url) as summary:
            _, rollback_3 = playbook("playbooks/deploy_rails.yml", "--limit", "rails", "-e", "rails_app_release=1",
                                     what="deploy_rails.yml release 1 to 3 nodes (rollback)")
        figure("rollback_seconds_3", f"{rollback_3:.1f}")
        figure("rollback_failed_requests", summary["failed"])
        wait_serving(nodes, "1", timeout=60)

        # (d) release 1 -> 2 on one node, pulling like (b).
        remove_image(ONE_NODE, "2")
        with load("deploy_1", url) as summary:
            _, deploy_1 = playbook("playbooks/deploy_rails.yml", "--limit", ONE_NODE, "-e", "rails_app_release=2",
                                   what=f"deploy_rails.yml release 2 to {ONE_NODE}")
        figure("deploy_seconds_1", f"{deploy_1:.1f}")
        figure("deploy_ratio_3_to_1", f"{deploy_3 / deploy_1:.2f}")
        if summary.get("failed"):
            note(f"deploy to {ONE_NODE}: {summary['failed']} failed request(s)")

        # (g) the real Rails app (lab/images/railsapp): release 1 on the 3 nodes, then release 2 as in (b), its floor
        # measured the same way (Rails boots in about a second here, the test app in a tenth).
        railsapp_image = "{{ railsdeploy_registry }}/railsapp"
        railsapp = ["-e", f"railsdeploy_app_image={railsapp_image}"]
        playbook("playbooks/deploy_rails.yml", "--limit", "rails", "-e", "rails_app_release=1", *railsapp,
                 what="deploy_rails.yml the Rails app's release 1 to 3 nodes")
        wait_serving(nodes, "1", timeout=60)
        ref = image_ref(ONE_NODE, "2")
        pull_3 = pull_in_parallel(nodes, ref)
        remove_image("rails", "2", railsapp_image)
        with load("rails_app_deploy_3", url) as summary:
            proc, rails_3 = playbook("playbooks/deploy_rails.yml", "--limit", "rails", "-e", "rails_app_release=2",
                                     *railsapp, what="deploy_rails.yml the Rails app's release 2 to 3 nodes")
        figure("rails_app_deploy_seconds_3", f"{rails_3:.1f}")
        figure("rails_app_deploy_failed_requests", summary["failed"])
        wait_serving(nodes, "2", timeout=60)
        rails_floor = floor(proc, nodes, ref, pull_3, "(g)")
        figure("rails_app_deploy_floor_seconds_3", f"{rails_floor:.1f}")
        figure("rails_app_deploy_floor_ratio_3", f"{rails_3 / rails_floor:.2f}")
    except (Failed, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as exc:
        failed = exc
        note(f"deploy bench failed: {exc}")
    finally:
        cleanup(start_release)
    return 1 if failed else 0


def cleanup(start_release: str | None) -> None:
    """rails2003 destroyed; the other rails nodes serve one release (the one from before the bench, or 1)."""
    try:
        remove_scripts_containers()
        if THIRD_NODE in rails_nodes():
            playbook("playbooks/destroy.yml", "-e", f"nodes={THIRD_NODE}", what=f"destroying {THIRD_NODE}")
        release = start_release or "1"
        playbook("playbooks/deploy_rails.yml", "--limit", "rails", "-e", f"rails_app_release={release}",
                 what=f"deploy_rails.yml release {release} (clean-up)")
        note(f"clean-up: {THIRD_NODE} destroyed, rails nodes {sorted(rails_nodes())} serve release {release}")
    except (Failed, subprocess.TimeoutExpired, OSError) as exc:
        note(f"clean-up failed: {exc}")


if __name__ == "__main__":
    sys.exit(main())
