"""A single primary's cluster becomes the first leader of a Patroni pair without losing a row (docs/design/standby.md,
section 11, the upgrade path), with the lab's images and no lab: PostgreSQL initialised by the image's plain mode, as
today's primary runs it, gets rows and is stopped; Patroni, from the configuration the collection renders (a
bootstrap that refuses: it may only adopt), starts that data directory and takes the leader lock; files/roles.sh makes
the app's role and the roles Patroni's replicas and pg_rewind connect as (a second run changes nothing); a second
member is cloned from the adopted leader and streams as its synchronous standby with every row.

A network, an etcd member, a volume and PostgreSQL containers of their own, removed at the end. Needs the lab images
(`make images`). Run with ``.venv/bin/pytest tests/integration/images/test_patroni_adopt.py -v`` (about 40 s).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import config
from test_patroni_etcd import POSTGRES, docker, http_status, run_etcd, wait
from test_patroni_pair import SECRETS, address, members, patroni_waiting, render_patroni, sql, write_file

REPO = Path(__file__).resolve().parents[3]
ROLES_SCRIPT = REPO / "roles" / "postgres_primary" / "files" / "roles.sh"
SCOPE = "itest-adopted"
PGDATA = "/var/lib/postgresql/data"


def cluster_roles(container: str) -> str:
    """files/roles.sh as deploy_postgres.yml runs it on a Patroni leader: the app (shop, owner of its database), the
    superuser, replicator and rewind, each password from its file."""
    return docker("exec", "--user", "999:999", container, "sh", "-c", ROLES_SCRIPT.read_text(), "roles", "shop",
                  "shop", "postgres", "/tmp/app", "/tmp/superuser", "/tmp/replication", "/tmp/rewind").stdout


@pytest.fixture(scope="module")
def adopted(ansible_locally, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tag = uuid.uuid4().hex[:6]
    net, volume = f"itest-adopt-{tag}", f"itest-adopt-{tag}"
    names = {"etcd": f"itest-etcd-{tag}", "plain": f"itest-plain-{tag}", "pg1": f"itest-adopt1-{tag}",
             "pg2": f"itest-adopt2-{tag}"}
    labels = ["--label", f"{config.LABEL}.itest=images"]
    docker("network", "create", *labels, net)
    docker("volume", "create", *labels, volume)
    try:
        run_etcd(names["etcd"], net, labels)
        # Today's primary: the image's plain mode initialises the cluster on the data volume.
        docker("run", "--detach", "--name", names["plain"], *labels, "--network", net,
               "--mount", f"type=volume,source={volume},target={PGDATA}",
               "--env", f"POSTGRES_PASSWORD={SECRETS['superuser']}", "--env", "POSTGRES_DB=shop", POSTGRES)
        plain_ip = address(names["plain"])
        wait("the plain primary to take SQL", lambda: docker(
            "exec", "--env", f"PGPASSWORD={SECRETS['superuser']}", names["plain"], "psql", "-h", plain_ip, "-U",
            "postgres", "-tAc", "select 1", check=False).stdout.strip() == "1", 90)
        sql(names["plain"], plain_ip, "CREATE TABLE shop (n int); INSERT INTO shop SELECT generate_series(1, 50);")
        system_id = docker("exec", "--user", "999:999", names["plain"], "sh", "-c",
                           f"pg_controldata {PGDATA} | sed -n 's/^Database system identifier: *//p'").stdout.strip()
        docker("stop", "--time", "60", names["plain"])
        docker("rm", names["plain"])

        # Patroni on the same volume (pg1), and an empty member (pg2), each waiting for its configuration.
        patroni_waiting(names["pg1"], net, labels, "--mount", f"type=volume,source={volume},target={PGDATA}")
        patroni_waiting(names["pg2"], net, labels)
        ips = {pg: address(names[pg]) for pg in ("etcd", "pg1", "pg2")}
        out = tmp_path_factory.mktemp("adopt")
        render_patroni(ansible_locally, {"pg1": {}, "pg2": {}}, ips["etcd"], out,
                       postgres_primary_backup_stanza=SCOPE,
                       postgres_primary_patroni_members={"pg1": ips["pg1"], "pg2": ips["pg2"]})
        write_file(names["pg1"], "/tmp/patroni.yml", (out / "pg1.yml").read_text())
        yield {**{f"{k}_container": v for k, v in names.items()}, **ips, "system_id": system_id,
               "pg2_config": (out / "pg2.yml").read_text()}
    finally:
        for container in reversed(names.values()):  # etcd last: the members leave quietly
            logs = docker("logs", "--tail", "30", container, check=False)
            print(f"--- {container} ---\n{logs.stdout}{logs.stderr}")
            docker("rm", "--force", container, check=False)
        docker("volume", "rm", volume, check=False)
        docker("network", "rm", net, check=False)


def test_patroni_adopts_the_single_primarys_cluster_with_every_row(adopted):
    took = wait("Patroni to start the adopted cluster and lead",
                lambda: http_status(f"http://{adopted['pg1']}:8008/primary") == 200, 90)
    print(f"pg1 leads the adopted cluster after {took:.1f}s")
    assert sql(adopted["pg1_container"], adopted["pg1"], "SELECT count(*) FROM shop") == "50"
    # The same cluster, not a new one: etcd's initialize key holds the data directory's system identifier.
    initialize = docker("exec", adopted["etcd_container"], "etcdctl", "get", "--print-value-only",
                        f"/railsdeploy/{SCOPE}/initialize").stdout.strip()
    assert adopted["system_id"] and initialize == adopted["system_id"]


def test_the_roles_patroni_needs_are_made_once_then_left_alone(adopted):
    wait("pg1 to lead", lambda: http_status(f"http://{adopted['pg1']}:8008/primary") == 200, 90)
    files = {"app": "itest-app-password-00000000", "superuser": SECRETS["superuser"],
             "replication": SECRETS["replication"], "rewind": SECRETS["rewind"]}
    for name, text in files.items():
        write_file(adopted["pg1_container"], f"/tmp/{name}", text)
    first = cluster_roles(adopted["pg1_container"])
    for change in ("role shop created", "role replicator created", "role rewind created",
                   "role rewind may read what pg_rewind needs", "the password of role replicator",
                   "the password of role rewind"):
        assert f"changed: {change}" in first, first
    assert cluster_roles(adopted["pg1_container"]) == ""
    granted = sql(adopted["pg1_container"], adopted["pg1"],
                  "SELECT rolreplication FROM pg_roles WHERE rolname = 'replicator'")
    assert granted == "t"


def test_a_second_member_is_cloned_from_the_adopted_leader_and_streams_synchronously(adopted):
    wait("pg1 to lead", lambda: http_status(f"http://{adopted['pg1']}:8008/primary") == 200, 90)
    write_file(adopted["pg2_container"], "/tmp/patroni.yml", adopted["pg2_config"])
    took = wait("pg2 to be cloned and be the synchronous standby",
                lambda: members(adopted).get("pg2", ("", ""))[0] == "sync_standby", 90)
    print(f"pg2 is the synchronous standby after {took:.1f}s")
    assert sql(adopted["pg2_container"], adopted["pg2"], "SELECT count(*) FROM shop") == "50"
