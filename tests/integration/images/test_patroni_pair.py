"""Two PostgreSQL members run by Patroni from the configuration the collection renders (postgres_primary, entry point
"patroni_config"; docs/design/standby.md, section 4), with the lab's images and no lab: the first member initialises
the cluster, the second is cloned from it and becomes its synchronous standby, a commit on the leader is on the
standby, the REST API refuses a change without its password, a database proxy (haproxy with the listener role
database_proxy renders, entry point "config") sends connections to the leader, the standby takes over when the leader's
container is killed and the same proxy address then reaches it, and a member whose cluster does not exist in etcd
never initialises an empty data directory by itself (the bootstrap guard).

A network, an etcd member, three PostgreSQL containers and a proxy of their own, removed at the end. Needs the lab
images (`make images`). Run with ``.venv/bin/pytest tests/integration/images/test_patroni_pair.py -v`` (about a minute).
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import config
from test_patroni_etcd import POSTGRES, container_log, docker, http_status, run_etcd, wait

PLAYBOOK = Path(__file__).with_name("patroni_config.yml")
PROXY_PLAYBOOK = Path(__file__).with_name("database_proxy.yml")
PROXY = config.image("proxy", "1")
SCOPE = "itest-pair"
EMPTY_SCOPE = "itest-never-initialised"
SECRETS = {name: f"itest-{name}-password-0000" for name in ("superuser", "replication", "rewind", "restapi")}
# Patroni's REST user (templates/patroni.yml.j2).
REST_USER = "railsdeploy"


def patroni_waiting(name: str, net: str, labels: list[str], *options: str) -> None:
    """A PostgreSQL container that starts Patroni as the image's postgres user once its configuration is written
    (write_file to /tmp/patroni.yml); ``options`` go to docker run (a data volume's mount)."""
    script = "while [ ! -s /tmp/patroni.yml ]; do sleep 0.2; done; exec patroni /tmp/patroni.yml"
    docker("run", "--detach", "--name", name, *labels, "--network", net, *options, "--user", "999:999",
           "--entrypoint", "sh", POSTGRES, "-c", script)


def render_patroni(ansible_locally, hosts: dict, etcd: str, out: Path, **variables) -> None:
    """Each host's Patroni configuration, rendered by the role on the controller as a deploy renders it (entry point
    "patroni_config"): <out>/<host>.yml."""
    rendered = ansible_locally(PLAYBOOK, hosts, {
        "postgres_primary_etcd_hosts": [f"{etcd}:2379"], "postgres_primary_patroni_secrets": SECRETS,
        "patroni_config_dir": str(out), **variables}, out)
    assert rendered.returncode == 0, rendered.stdout[-4000:]


def write_file(container: str, path: str, text: str) -> None:
    """``text`` into ``path`` in the container, as the image's postgres user, atomically (a waiting Patroni starts
    once the file is whole)."""
    proc = subprocess.run(["docker", "exec", "--interactive", "--user", "999:999", container, "sh", "-c",
                           f"cat > {path}.tmp && mv {path}.tmp {path}"], input=text, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr


def address(container: str) -> str:
    return docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                  container).stdout.strip()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def sql(container: str, host: str, statement: str) -> str:
    return docker("exec", "--env", f"PGPASSWORD={SECRETS['superuser']}", container, "psql", "-h", host, "-U",
                  "postgres", "-d", "postgres", "-tAc", statement).stdout.strip()


@pytest.fixture(scope="module")
def cluster(ansible_locally, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """etcd, pg1 (may initdb), pg2 (refuses to), both in SCOPE, and pg3 alone in EMPTY_SCOPE (refuses to): the
    containers' names and addresses, once each runs Patroni with its rendered configuration."""
    tag = uuid.uuid4().hex[:6]
    net = f"itest-patroni-{tag}"
    names = {"etcd": f"itest-etcd-{tag}", **{pg: f"itest-{pg}-{tag}" for pg in ("pg1", "pg2", "pg3")}}
    labels = ["--label", f"{config.LABEL}.itest=images"]
    docker("network", "create", *labels, net)
    try:
        run_etcd(names["etcd"], net, labels)
        for pg in ("pg1", "pg2", "pg3"):
            patroni_waiting(names[pg], net, labels)
        ips = {name: address(container) for name, container in names.items()}

        # The configurations, rendered by the role on the controller as the cluster's deploy will render them.
        out = tmp_path_factory.mktemp("patroni")
        pair = {"postgres_primary_backup_stanza": SCOPE,
                "postgres_primary_patroni_members": {"pg1": ips["pg1"], "pg2": ips["pg2"]}}
        hosts = {
            "pg1": {**pair, "postgres_primary_patroni_bootstrap": "initdb"},
            "pg2": pair,
            "pg3": {"postgres_primary_backup_stanza": EMPTY_SCOPE,
                    "postgres_primary_patroni_members": {"pg3": ips["pg3"]}},
        }
        render_patroni(ansible_locally, hosts, ips["etcd"], out)
        # The founder first, as a deploy starts it: a member that refuses to bootstrap and finds no cluster may take
        # the initialize key first, fail its bootstrap and exit (CI at 9bf421e and 6f56a62: pg2 "trying to bootstrap a
        # new cluster", then "Failed to bootstrap cluster"); its container's restart policy would start it again, and
        # these containers have none.
        write_file(names["pg1"], "/tmp/patroni.yml", (out / "pg1.yml").read_text())
        wait("pg1 to initialise and lead", lambda: http_status(f"http://{ips['pg1']}:8008/primary") == 200, 90,
             diagnose=lambda: container_log(names["pg1"]))
        for pg in ("pg2", "pg3"):
            write_file(names[pg], "/tmp/patroni.yml", (out / f"{pg}.yml").read_text())
        yield {"net": net, **{f"{k}_container": v for k, v in names.items()}, **ips,
               "config_pg1": (out / "pg1.yml").read_text()}
    finally:
        for container in reversed(names.values()):  # etcd last: the members leave quietly
            logs = docker("logs", "--tail", "30", container, check=False)
            print(f"--- {container} ---\n{logs.stdout}{logs.stderr}")
            docker("rm", "--force", "--volumes", container, check=False)
        docker("network", "rm", net, check=False)


def members(cluster: dict[str, str], on: str = "pg1") -> dict[str, tuple[str, str]]:
    """name -> (role, state), as Patroni's /cluster on member ``on`` reports them."""
    return {m["name"]: (m["role"], m["state"]) for m in get_json(f"http://{cluster[on]}:8008/cluster")["members"]}


@pytest.fixture(scope="module")
def proxy(cluster, ansible_locally, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A node proxy on the cluster's network, its database listener rendered by role database_proxy: its address."""
    out = tmp_path_factory.mktemp("proxy")
    rendered = ansible_locally(PROXY_PLAYBOOK, {"rails1": {}}, {
        "database_proxy_servers": {"pg1": cluster["pg1"], "pg2": cluster["pg2"]},
        "database_proxy_address": "0.0.0.0",
        "proxy_config_dir": str(out),
    }, out)
    assert rendered.returncode == 0, rendered.stdout[-4000:]
    # haproxy.cfg's global section (the listener's file comes after it, as on a node).
    (out / "haproxy.cfg").write_text("global\n    log stdout format raw local0 info\n")
    name = f"{cluster['pg1_container']}-proxy"
    docker("create", "--name", name, "--label", f"{config.LABEL}.itest=images", "--network", cluster["net"], PROXY,
           "-f", "/usr/local/etc/haproxy/haproxy.cfg", "-f", "/usr/local/etc/haproxy/postgres.cfg")
    try:
        for file in ("haproxy.cfg", "postgres.cfg"):
            docker("cp", str(out / file), f"{name}:/usr/local/etc/haproxy/{file}")
        docker("start", name)
        yield address(name)
    finally:
        logs = docker("logs", "--tail", "30", name, check=False)
        print(f"--- {name} ---\n{logs.stdout}{logs.stderr}")
        docker("rm", "--force", name, check=False)


def through_proxy(cluster, proxy: str, client: str, statement: str) -> str:
    """``statement`` as the app sends it, to the proxy's address, from the container ``client``: its output, or ""
    when it failed (no server behind the proxy yet, a connection cut)."""
    return docker("exec", "--env", f"PGPASSWORD={SECRETS['superuser']}", cluster[f"{client}_container"], "psql",
                  "-q", "-h", proxy, "-U", "postgres", "-d", "postgres", "-tAc", statement,
                  check=False).stdout.strip()


def test_the_first_member_initialises_and_the_second_follows_as_synchronous_standby(cluster):
    took = wait("pg1 to initialise and lead", lambda: http_status(f"http://{cluster['pg1']}:8008/primary") == 200, 90)
    print(f"pg1 leads after {took:.1f}s")
    took = wait("pg2 to be cloned and stream as the synchronous standby",
                lambda: members(cluster).get("pg2", ("", ""))[0] == "sync_standby"
                and http_status(f"http://{cluster['pg2']}:8008/replica") == 200, 150,
                diagnose=lambda: f"members: {members(cluster)}\n{container_log(cluster['pg2_container'])}")
    print(f"pg2 is the synchronous standby after {took:.1f}s more")
    assert members(cluster)["pg1"] == ("leader", "running")
    # The configuration holds the passwords; the container's environment does not.
    assert SECRETS["superuser"] in cluster["config_pg1"]
    env = docker("inspect", "--format", "{{json .Config.Env}}", cluster["pg1_container"]).stdout
    assert not any(secret in env for secret in SECRETS.values())

    # A commit acknowledged by the leader is on the standby.
    sql(cluster["pg1_container"], cluster["pg1"],
        "CREATE TABLE itest (n int); INSERT INTO itest SELECT generate_series(1, 100);")
    wait("the rows on the standby", lambda: sql(cluster["pg2_container"], cluster["pg2"],
                                                "SELECT count(*) FROM itest") == "100", 30)
    settings = get_json(f"http://{cluster['pg1']}:8008/config")
    assert settings["synchronous_mode"] is True and settings["failsafe_mode"] is True
    assert settings["loop_wait"] + 2 * settings["retry_timeout"] <= settings["ttl"]


def test_the_rest_api_changes_nothing_without_its_password(cluster):
    body = json.dumps({"maximum_lag_on_failover": 1048576}).encode()

    def patch(auth: str | None) -> int:
        req = urllib.request.Request(f"http://{cluster['pg1']}:8008/config", data=body, method="PATCH",
                                     headers={"Content-Type": "application/json"})
        if auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert patch(None) == 401
    assert patch(f"{REST_USER}:wrong-password") == 401
    assert patch(f"{REST_USER}:{SECRETS['restapi']}") == 200


def test_the_node_proxy_sends_the_app_to_the_leader(cluster, proxy):
    wait("the proxy to reach the leader", lambda: through_proxy(
        cluster, proxy, "pg2", "SELECT inet_server_addr()::text || ' ' || pg_is_in_recovery()::text") ==
        f"{cluster['pg1']}/32 false", 30)


def test_a_member_without_a_cluster_never_initialises_an_empty_data_directory(cluster):
    # pg3's scope does not exist in etcd and its bootstrap method refuses: Patroni gives up (on a node, Docker's
    # restart policy starts it again, to give up again) - no cluster is made, the data directory stays empty.
    wait("pg3's Patroni to give up", lambda: "Failed to bootstrap cluster" in docker(
        "logs", cluster["pg3_container"], check=False).stderr, 60)
    keys = docker("exec", cluster["etcd_container"], "etcdctl", "get", "--prefix", "--keys-only",
                  f"/railsdeploy/{EMPTY_SCOPE}/").stdout.split()
    assert f"/railsdeploy/{EMPTY_SCOPE}/initialize" not in keys, keys
    assert f"/railsdeploy/{EMPTY_SCOPE}/leader" not in keys, keys
    version = docker("cp", f"{cluster['pg3_container']}:/var/lib/postgresql/data/PG_VERSION", "-", check=False)
    assert version.returncode != 0 and "Could not find the file" in version.stderr, version.stderr


def test_the_standby_takes_over_when_the_leaders_container_is_killed(cluster, proxy):
    wait("pg2 to be the synchronous standby", lambda: members(cluster).get("pg2", ("", ""))[0] == "sync_standby", 60)
    sync = docker("exec", cluster["etcd_container"], "etcdctl", "get", "--print-value-only",
                  f"/railsdeploy/{SCOPE}/sync").stdout.strip()
    docker("kill", cluster["pg1_container"])
    try:
        took = wait("pg2 to lead", lambda: http_status(f"http://{cluster['pg2']}:8008/primary") == 200, 90)
    except pytest.fail.Exception:
        seen = get_json(f"http://{cluster['pg2']}:8008/patroni")
        logs = docker("logs", "--tail", "15", cluster["pg2_container"], check=False)
        pytest.fail(f"pg2 did not take over; /sync before the kill: {sync}; pg2's /patroni: {seen}; its log:\n"
                    f"{logs.stdout}{logs.stderr}")
    print(f"pg2 leads {took:.1f}s after pg1 was killed")
    # The app's address is unchanged: the proxy now sends it to pg2, and a write succeeds there.
    more = wait("a write through the proxy", lambda: through_proxy(
        cluster, proxy, "pg2", "INSERT INTO itest VALUES (101) RETURNING inet_server_addr()::text") ==
        f"{cluster['pg2']}/32", 15)
    print(f"a write through the proxy succeeded {more:.1f}s after pg2 led")
    # ... and keeps reaching it (three of the proxy's checks later).
    time.sleep(3)
    assert through_proxy(cluster, proxy, "pg2", "SELECT inet_server_addr()::text || ' ' || pg_is_in_recovery()::text") \
        == f"{cluster['pg2']}/32 false"
    assert sql(cluster["pg2_container"], cluster["pg2"], "SELECT count(*) FROM itest") == "101"


def test_timings_that_break_patronis_rule_are_refused_before_anything_is_rendered(ansible_locally, tmp_path: Path):
    refused = ansible_locally(PLAYBOOK, {"pg1": {}}, {
        "postgres_primary_patroni_members": {"pg1": "10.0.0.1"}, "postgres_primary_etcd_hosts": ["10.0.0.1:2379"],
        "postgres_primary_patroni_secrets": SECRETS, "patroni_config_dir": str(tmp_path),
        "postgres_primary_patroni_ttl": 20, "postgres_primary_patroni_loop_wait": 10,
        "postgres_primary_patroni_retry_timeout": 10,
    }, tmp_path)
    assert refused.returncode != 0
    assert "loop_wait + 2 x retry_timeout <= ttl (got ttl 20, loop_wait 10, retry_timeout 10)" in refused.stdout
    assert not (tmp_path / "pg1.yml").exists()
