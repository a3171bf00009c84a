"""playbooks/build.yml end to end: its own moto_server (the asset bucket) and its own registry container.

What a user would notice: the release's image can be pulled from the registry under the release id (by default
the source's commit), its fingerprinted assets are in the bucket with a year-long immutable Cache-Control and
their Content-Type, a later release leaves the earlier release's assets where its pages still find them, the
same build again changes nothing, and a bad release id is refused before anything is built or pushed.

The test app (lab/images/testapp/) is built from the root filesystem image that `make images` made
(railsdeploy-lab/testapp-rootfs) and the registry runs the lab's registry image: no lab needs to be up, but the
lab images must exist. Builds reuse Docker's layer cache: only the release's own layer is built.

The directory is not called ``build``: pytest does not recurse into directories of that name. Run with
``.venv/bin/pytest tests/integration/rails_image -v`` (about a minute).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from labkit.images import rootfs_ref
from lablib.playbooks import JsonRun
from lablib.registry import REGISTRY_IMAGE, Registry, own_registry
from lablib.settings import SHOP

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
PLAYBOOK = REPO / "playbooks" / "build.yml"
REGION = "us-west-2"
BUCKET = "itest-build-assets"
PREFIX = "production/assets"
REPOSITORY = "itest/testapp"
CACHE_CONTROL = "public, max-age=31536000, immutable"
ACCESS_KEY = "BUILDTESTACCESSKEY00"
SECRET_KEY = "build-test-secret-key-not-a-real-one"


TESTAPP_BASE = rootfs_ref("testapp")


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=300)


@pytest.fixture(scope="module")
def images_present() -> None:
    missing = [ref for ref in (TESTAPP_BASE, REGISTRY_IMAGE) if docker("image", "inspect", ref, check=False).returncode]
    if missing:
        pytest.fail(f"lab images missing: {', '.join(missing)}; run `make images` first")


@pytest.fixture(scope="module")
def endpoint(moto_url: str) -> str:
    """This module's own moto_server (tests/integration/conftest.py), with the asset bucket made (provision's job)."""
    s3(moto_url).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return moto_url


def s3(endpoint: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY
    )


@pytest.fixture(scope="module")
def registry(images_present) -> Iterator[Registry]:
    """The lab's registry image in a container of this module (the images pushed to it go with it)."""
    with own_registry("registry") as reg:
        yield reg


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A copy of the test app in a git repository of its own: (directory, its short commit id)."""
    root = tmp_path_factory.mktemp("app") / "testapp"
    shutil.copytree(REPO / "lab" / "images" / "testapp", root, ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(root), "-c", "user.name=itest", "-c", "user.email=itest@example.com"]
    subprocess.run([*git, "init", "--quiet"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "test app"], check=True)
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True)
    return root, commit.stdout.strip()


@pytest.fixture(scope="module")
def not_a_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plain") / "testapp"
    shutil.copytree(REPO / "lab" / "images" / "testapp", root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="module")
def inventory(tmp_path_factory, endpoint: str, registry: Registry, source) -> Path:
    """A production-like inventory: valid settings, the test's moto and registry, the test app's build args."""
    path = tmp_path_factory.mktemp("inventory") / "hosts.yml"
    settings = {
        **SHOP,
        "aws_endpoint_url": endpoint,
        "aws_access_key": ACCESS_KEY,
        "aws_secret_key": SECRET_KEY,
        "railsdeploy_assets_bucket": BUCKET,
        "railsdeploy_assets_prefix": PREFIX,
        "railsdeploy_app_image": f"{registry.address}/{REPOSITORY}",
        "rails_image_source": str(source[0]),
        "rails_image_build_args": {"BASE": TESTAPP_BASE},
        "rails_image_release_build_arg": "APP_RELEASE",
    }
    localhost = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    hosts = {"localhost": localhost}
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts, "vars": settings}}))
    return path


@pytest.fixture(scope="module")
def build(inventory: Path, ansible_playbook):
    def run(*args: str) -> JsonRun:
        return JsonRun(ansible_playbook(inventory, PLAYBOOK, *args))

    return run


def objects(endpoint: str) -> dict[str, dict[str, Any]]:
    """Every object under the prefix: key -> its HEAD (Cache-Control, Content-Type, ...)."""
    client = s3(endpoint)
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/").get("Contents") or []
    return {obj["Key"]: client.head_object(Bucket=BUCKET, Key=obj["Key"]) for obj in listed}


def image_assets(ref: str) -> list[str]:
    """The fingerprinted files in the pushed image, as the deploy will pull it."""
    listing = docker("run", "--rm", "--entrypoint", "ls", ref, "/app/public/assets").stdout
    return sorted(listing.split())


# Refusals first: the registry and the bucket are still empty, so "nothing pushed" is exact.


@pytest.mark.parametrize("release", ["bad tag", "-leading-dash", "x" * 129, "sha/with/slash"])
def test_a_bad_release_id_is_refused_before_anything_is_built(build, registry, endpoint, release):
    refused = build("-e", json.dumps({"rails_app_release": release}))

    assert refused.rc != 0
    assert "is not a valid Docker tag" in refused.failure()
    assert json.dumps(release) in refused.failure()
    assert refused.changed == 0
    assert registry.catalog() == []
    assert objects(endpoint) == {}


def test_a_missing_asset_bucket_is_refused_naming_provision_before_anything_is_built(build, registry):
    refused = build("-e", "railsdeploy_assets_bucket=shop-assets-not-made-yet")

    assert refused.rc != 0
    for words in ("The asset bucket shop-assets-not-made-yet (railsdeploy_assets_bucket) cannot be listed",
                  "does not exist", "playbooks/provision.yml creates it", "Nothing was built or pushed"):
        assert words in refused.failure(), refused.failure()
    assert refused.changed == 0
    assert registry.catalog() == []


def test_outside_a_git_checkout_the_release_id_is_required(build, registry, not_a_checkout):
    refused = build("-e", json.dumps({"rails_image_source": str(not_a_checkout)}))

    assert refused.rc != 0
    assert "is not a git checkout" in refused.failure()
    assert "-e rails_app_release=<id>" in refused.failure()
    assert registry.catalog() == []


@pytest.fixture(scope="module")
def first(build, source) -> JsonRun:
    return build().ok()


def test_the_image_is_in_the_registry_under_the_commit_id(first, registry, source):
    _root, commit = source
    assert registry.tags(REPOSITORY) == [commit]


def test_the_assets_are_in_the_bucket_immutable_with_their_content_type(first, registry, endpoint, source):
    _root, commit = source
    found = objects(endpoint)

    files = image_assets(f"{registry.address}/{REPOSITORY}:{commit}")
    assert sorted(key.rsplit("/", 1)[1] for key in found) == files  # the manifest (.manifest.json) stays out
    assert {key.rsplit(".", 1)[1] for key in found} == {"css", "js"}
    for key, head in found.items():
        assert head["CacheControl"] == CACHE_CONTROL
        assert head["ContentType"] == {"css": "text/css", "js": "text/javascript"}[key.rsplit(".", 1)[1]]
    css = next(key for key in found if key.endswith(".css"))
    body = s3(endpoint).get_object(Bucket=BUCKET, Key=css)["Body"].read().decode()
    assert f"release {commit}" in body  # the release id went in as APP_RELEASE


def test_the_same_build_again_changes_nothing(first, build):
    again = build().ok()
    assert again.changed == 0, again.changed_tasks()


def test_a_later_release_keeps_the_earlier_releases_assets(first, build, registry, endpoint, source):
    _root, commit = source
    before = objects(endpoint)

    second = build("-e", "rails_app_release=2").ok()

    after = objects(endpoint)
    assert registry.tags(REPOSITORY) == sorted([commit, "2"])
    assert set(before) < set(after)
    for key, head in before.items():
        assert after[key]["ETag"] == head["ETag"]  # untouched, not uploaded again
    new = set(after) - set(before)
    assert len(new) == 2
    assert sorted(key.rsplit("/", 1)[1] for key in new) == image_assets(f"{registry.address}/{REPOSITORY}:2")
    assert "railsdeploy.aws.rails_image : Image is in the registry as " in " ".join(second.changed_tasks())


def test_check_mode_predicts_the_build_and_publishes_nothing(first, build, registry, endpoint):
    before = objects(endpoint)

    checked = build("--check", "-e", json.dumps({"rails_app_release": "3"})).ok()

    assert [name for name in checked.changed_tasks() if "Image is built as" in name]
    assert "3" not in registry.tags(REPOSITORY)
    assert {key: head["ETag"] for key, head in objects(endpoint).items()} == {
        key: head["ETag"] for key, head in before.items()
    }
