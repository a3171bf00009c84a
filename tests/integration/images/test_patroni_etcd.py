"""The lab's PostgreSQL and etcd images, as the standby (docs/design/standby.md) will run them: Debian's Patroni 3.0
bootstraps a cluster and takes the leader lock in Debian's etcd 3.4 through the v3 API (no `--enable-v2`).

What the standby relies on, shown with the images alone (no lab, no moto): the versions the design assumes; one
Patroni member on an empty data directory initialises PostgreSQL, becomes the leader and answers 200 on
`/primary` (the node proxies' health check); the leader key is in etcd's v3 keyspace; PostgreSQL accepts SQL over
TCP with the superuser Patroni made. A network and two containers of their own, removed at the end.

Needs the lab images (`make images`). Run with ``.venv/bin/pytest tests/integration/images -v`` (about 30 s).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from labkit import config
from lablib.containers import docker, wait

POSTGRES = config.image("postgres", "15")
ETCD = config.image("etcd", "3.4")
SCOPE = "itest-pair"
PASSWORD = "itest-superuser-password-0000"  # noqa: S105 - a throwaway cluster's, never leaves the test


def run_in(image: str, *argv: str) -> str:
    return docker("run", "--rm", "--network", "none", "--entrypoint", argv[0], image, *argv[1:]).stdout


def container_log(container: str, lines: int = 40) -> str:
    proc = docker("logs", "--tail", str(lines), container, check=False)
    return f"{container}'s last {lines} log lines:\n{proc.stdout}{proc.stderr}"


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def run_etcd(container: str, net: str, labels: list[str]) -> None:
    """A one-member etcd cluster in ``container`` on network ``net``, its clients served on port 2379."""
    docker("run", "--detach", "--name", container, *labels, "--network", net, ETCD,
           "--name", "etcd1", "--listen-client-urls", "http://0.0.0.0:2379",
           "--advertise-client-urls", f"http://{container}:2379",
           "--listen-peer-urls", "http://0.0.0.0:2380", "--initial-advertise-peer-urls", f"http://{container}:2380",
           "--initial-cluster", f"etcd1=http://{container}:2380")


@pytest.fixture(scope="module")
def pair() -> Iterator[dict[str, str]]:
    """An etcd member and one Patroni member on a network of their own: {'etcd': ip, 'patroni': ip}."""
    tag = uuid.uuid4().hex[:6]
    net, etcd, pg = f"itest-pair-{tag}", f"itest-etcd-{tag}", f"itest-patroni-{tag}"
    labels = ["--label", f"{config.LABEL}.itest=images"]
    docker("network", "create", *labels, net)
    try:
        run_etcd(etcd, net, labels)
        patroni_yml = {
            "scope": SCOPE, "name": "pg1",
            "restapi": {"listen": "0.0.0.0:8008", "connect_address": f"{pg}:8008"},
            "etcd3": {"hosts": [f"{etcd}:2379"]},
            "bootstrap": {"dcs": {"ttl": 20, "loop_wait": 5, "retry_timeout": 5, "synchronous_mode": True},
                          "initdb": [{"encoding": "UTF8"}, "data-checksums"]},
            "postgresql": {
                "listen": "0.0.0.0:5432", "connect_address": f"{pg}:5432",
                "data_dir": "/var/lib/postgresql/data/pgdata", "bin_dir": "/usr/lib/postgresql/15/bin",
                "pg_hba": ["local all all trust", "host all all 0.0.0.0/0 scram-sha-256",
                           "host replication replicator 0.0.0.0/0 scram-sha-256"],
                "authentication": {"superuser": {"username": "postgres", "password": PASSWORD},
                                   "replication": {"username": "replicator", "password": PASSWORD + "-r"}},
            },
        }
        # Patroni runs as the image's postgres user (uid 999), its configuration written by the container itself.
        script = f"printf '%s' '{json.dumps(patroni_yml)}' > /tmp/patroni.yml && exec patroni /tmp/patroni.yml"
        docker("run", "--detach", "--name", pg, *labels, "--network", net, "--user", "999:999",
               "--entrypoint", "sh", POSTGRES, "-c", script)
        ips = {name: docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                            cid).stdout.strip() for name, cid in (("etcd", etcd), ("patroni", pg))}
        yield {**ips, "etcd_container": etcd, "patroni_container": pg}
    finally:
        for name in (pg, etcd):
            logs = docker("logs", "--tail", "40", name, check=False)
            print(f"--- {name} ---\n{logs.stdout}{logs.stderr}")
            docker("rm", "--force", "--volumes", name, check=False)
        docker("network", "rm", net, check=False)


def test_the_images_hold_the_versions_the_standby_design_assumes():
    assert run_in(POSTGRES, "patroni", "--version").split()[-1].startswith("3.0.")
    assert run_in(POSTGRES, "postgres", "--version").split()[-1].startswith("15.")
    assert run_in(POSTGRES, "pgbackrest", "version").startswith("pgBackRest 2.")
    assert "etcd Version: 3.4." in run_in(ETCD, "etcd", "--version")


def test_patroni_bootstraps_a_leader_through_etcds_v3_api(pair):
    took = wait("Patroni's /primary to answer 200 (initdb, then the leader lock)",
                lambda: http_status(f"http://{pair['patroni']}:8008/primary") == 200, 90)
    print(f"leader after {took:.1f}s")
    assert http_status(f"http://{pair['patroni']}:8008/replica") == 503
    cluster = json.loads(urllib.request.urlopen(f"http://{pair['patroni']}:8008/cluster", timeout=5).read())
    assert [(m["name"], m["role"], m["state"]) for m in cluster["members"]] == [("pg1", "leader", "running")]
    # The leader lock is a key of etcd's v3 keyspace (a v2-only client would have written none there).
    keys = docker("exec", pair["etcd_container"], "etcdctl", "get", "--prefix", "--keys-only",
                  f"/service/{SCOPE}/").stdout.split()
    assert f"/service/{SCOPE}/leader" in keys, keys
    leader = docker("exec", pair["etcd_container"], "etcdctl", "get", "--print-value-only",
                    f"/service/{SCOPE}/leader").stdout.strip()
    assert leader == "pg1"


def test_the_leader_takes_sql_over_tcp_with_the_superuser_patroni_made(pair):
    wait("Patroni's /primary", lambda: http_status(f"http://{pair['patroni']}:8008/primary") == 200, 90)
    sql = "CREATE TABLE IF NOT EXISTS itest (n int); INSERT INTO itest VALUES (1); SELECT count(*) FROM itest;"
    out = docker("exec", "--env", f"PGPASSWORD={PASSWORD}", pair["patroni_container"], "psql", "-h",
                 pair["patroni"], "-U", "postgres", "-d", "postgres", "-tAc", sql).stdout
    assert out.strip().splitlines()[-1] == "1"
