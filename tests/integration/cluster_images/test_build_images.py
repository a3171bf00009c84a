"""playbooks/build_images.yml end to end: the database's images built from the collection's recipes and pushed to a
registry of this module (the lab's registry image), with no lab up.

What a user would notice: the PostgreSQL image (PostgreSQL 15, pgBackRest, Patroni 3) and the etcd image can be
pulled from the registry the app's image comes from, under a tag that names the recipe; the play prints the
reference to set as railsdeploy_postgres_image; the same build again changes nothing; a bad setting is refused
before anything is built or pushed.

Production builds start from debian:bookworm-slim and install the packages from Debian's archive. Here nothing may
be pulled or downloaded: each image starts from the lab's root filesystem for it (`make images`, mmdebstrap with the
same packages.txt), which already holds every package, so the recipe's install step finds nothing missing. Run with
``.venv/bin/pytest tests/integration/cluster_images -v`` (about a minute).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from labkit.images import rootfs_ref
from lablib.playbooks import JsonRun
from lablib.registry import REGISTRY_IMAGE, Registry, own_registry
from lablib.settings import SHOP

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = REPO / "playbooks" / "build_images.yml"
BASES = {"postgres": rootfs_ref("postgres"), "etcd": rootfs_ref("etcd")}
REPOSITORIES = {"postgres": "shop/railsdeploy-postgres", "etcd": "shop/railsdeploy-etcd"}


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=600)


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    wanted = (REGISTRY_IMAGE, *BASES.values())
    missing = [ref for ref in wanted if docker("image", "inspect", ref, check=False).returncode]
    if missing:
        pytest.fail(f"lab images missing: {', '.join(missing)}; run `make images` first")
    with own_registry("images-registry") as reg:
        yield reg


@pytest.fixture(scope="module")
def inventory(tmp_path_factory, registry: Registry) -> Path:
    """A production-like inventory whose app image is in the module's registry, under the namespace shop/."""
    path = tmp_path_factory.mktemp("inventory") / "hosts.yml"
    settings = {
        **SHOP,
        "railsdeploy_app_image": f"{registry.address}/shop/app",
    }
    localhost = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    path.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": localhost}, "vars": settings}}))
    return path


@pytest.fixture(scope="module")
def build(inventory: Path, ansible_playbook):
    def run(image: str, *args: str) -> JsonRun:
        extra = {"cluster_images_names": [image], "cluster_images_base": BASES[image],
                 "cluster_images_pull_base": False}
        return JsonRun(ansible_playbook(inventory, PLAYBOOK, "-e", json.dumps(extra), *args))

    return run


def test_a_registry_that_is_not_set_is_refused_before_anything_is_built(build, registry):
    refused = build("postgres", "-e", "cluster_images_registry=")

    assert refused.rc != 0
    assert "cluster_images_registry is not set" in refused.failure()
    assert "Nothing was built or pushed" in refused.failure()
    assert refused.changed == 0
    assert registry.catalog() == []


def test_an_unknown_image_is_refused_naming_the_choices(build, registry):
    refused = build("postgres", "-e", json.dumps({"cluster_images_names": ["mysql"]}))

    assert refused.rc != 0
    assert "mysql" in refused.failure() and "postgres" in refused.failure()
    assert registry.catalog() == []


@pytest.fixture(scope="module")
def postgres(build) -> JsonRun:
    return build("postgres").ok()


def pulled_output(ref: str, *argv: str) -> str:
    """argv's output in the image as the nodes get it: pulled from the registry (the local copy removed first)."""
    docker("image", "rm", ref, check=False)
    return docker("run", "--rm", "--network", "none", "--entrypoint", argv[0], ref, *argv[1:]).stdout


def test_the_postgres_image_is_in_the_registry_under_a_tag_naming_its_recipe(postgres, registry):
    tags = registry.tags(REPOSITORIES["postgres"])
    assert len(tags) == 1 and re.fullmatch(r"15-[0-9a-f]{12}", tags[0]), tags
    ref = f"{registry.address}/{REPOSITORIES['postgres']}:{tags[0]}"
    assert f"Set railsdeploy_postgres_image: {ref}" in postgres.result("The images are ready")["msg"]
    # Pulled back from the registry, it runs what deploy_postgres.yml and a standby rely on.
    assert pulled_output(ref, "postgres", "--version").startswith("postgres (PostgreSQL) 15.")
    assert pulled_output(ref, "pgbackrest", "version").startswith("pgBackRest 2.")
    assert pulled_output(ref, "patroni", "--version").startswith("patroni 3.")


def test_the_same_build_again_changes_nothing(postgres, build, registry):
    tags = registry.tags(REPOSITORIES["postgres"])
    again = build("postgres").ok()
    assert again.changed == 0, again.changed_tasks()
    assert registry.tags(REPOSITORIES["postgres"]) == tags


def test_the_etcd_image_is_in_the_registry_and_runs_etcd_3_4(build, registry):
    etcd = build("etcd").ok()
    tags = registry.tags(REPOSITORIES["etcd"])
    assert len(tags) == 1 and re.fullmatch(r"3\.4-[0-9a-f]{12}", tags[0]), tags
    ref = f"{registry.address}/{REPOSITORIES['etcd']}:{tags[0]}"
    assert f"Set railsdeploy_etcd_image: {ref}." in etcd.result("The images are ready")["msg"]
    assert "etcd Version: 3.4." in pulled_output(ref, "etcd", "--version")
