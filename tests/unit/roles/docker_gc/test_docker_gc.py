"""Unit tests for roles/docker_gc/files/railsdeploy-docker-gc: what the daily clean-up removes and keeps.

The plan is a pure function of the containers, the images and the retained list; the end-to-end run
against a real Docker engine is in molecule/users (verify.yml).
"""

from __future__ import annotations

import pytest
from lablib.scripts import load_script

gc = load_script("docker_gc", "railsdeploy-docker-gc")

HOUR = 3600.0
NOW = 1_000_000.0
MIN_AGE = 24 * HOUR
KEEP = "railsdeploy.gc.keep"


def _container(cid, status, image, stopped_hours_ago=48, created_hours_ago=72, labels=None):
    return gc.Container(
        id=cid,
        name=cid,
        status=status,
        image_id=image,
        created=NOW - created_hours_ago * HOUR,
        finished=None if status in ("running", "created") else NOW - stopped_hours_ago * HOUR,
        labels=labels or {},
    )


def _plan(containers, images, retained):
    return gc.plan_removals(containers, images, retained, NOW, MIN_AGE, KEEP)


APP_41 = gc.Image("sha256:41", tags=["registry/app:41"], digests=["registry/app@sha256:a41"])
APP_42 = gc.Image("sha256:42", tags=["registry/app:42"])
APP_43 = gc.Image("sha256:43", tags=["registry/app:43"])
OLD = gc.Image("sha256:old", tags=["registry/app:40"])
DANGLING = gc.Image("sha256:dangling")
BY_DIGEST = gc.Image("sha256:dig", digests=["registry/tool@sha256:d1"])
IMAGES = [APP_41, APP_42, APP_43, OLD, DANGLING, BY_DIGEST]


def test_retained_releases_are_kept_and_the_rest_removed():
    containers = [_container("web-43", "running", "sha256:43")]
    plan = _plan(containers, IMAGES, retained={"sha256:41", "sha256:42", "sha256:43"})
    assert [i.id for i in plan.images] == ["sha256:old", "sha256:dangling", "sha256:dig"]
    assert plan.kept == {
        "sha256:41": "retained release",
        "sha256:42": "retained release",
        "sha256:43": "used by a container",
    }


def test_without_a_retained_file_only_dangling_images_go():
    plan = _plan([], IMAGES, retained=None)
    assert [i.id for i in plan.images] == ["sha256:dangling"]
    assert set(plan.kept) == {"sha256:41", "sha256:42", "sha256:43", "sha256:old", "sha256:dig"}


def test_an_empty_retained_file_keeps_only_images_in_use():
    plan = _plan([_container("web", "running", "sha256:43")], IMAGES, retained=set())
    assert "sha256:43" in plan.kept and len(plan.images) == len(IMAGES) - 1


@pytest.mark.parametrize("status", ["exited", "dead"])
def test_long_stopped_containers_go_and_free_their_unretained_image(status):
    old = _container("web-40", status, "sha256:old", stopped_hours_ago=30)
    plan = _plan([old], IMAGES, retained={"sha256:41"})
    assert plan.containers == [old]
    assert "sha256:old" in [i.id for i in plan.images]


def test_recently_stopped_containers_stay_with_their_image():
    recent = _container("web-42", "exited", "sha256:old", stopped_hours_ago=2)
    plan = _plan([recent], IMAGES, retained={"sha256:41"})
    assert plan.containers == []
    assert plan.kept["sha256:old"] == "used by a container"


def test_a_never_started_container_counts_from_its_creation():
    fresh = _container("being-deployed", "created", "sha256:old", created_hours_ago=0.1)
    stale = _container("abandoned", "created", "sha256:42", created_hours_ago=30)
    plan = _plan([fresh, stale], IMAGES, retained=set())
    assert plan.containers == [stale]
    assert plan.kept["sha256:old"] == "used by a container"


@pytest.mark.parametrize("value", ["true", "True", "1", "yes"])
def test_containers_labelled_keep_are_never_removed(value):
    pg = _container("postgres", "exited", "sha256:old", stopped_hours_ago=500, labels={KEEP: value})
    plan = _plan([pg], IMAGES, retained=set())
    assert plan.containers == []
    assert plan.kept["sha256:old"] == "used by a container"


def test_running_restarting_and_paused_containers_are_never_removed():
    containers = [_container(s, s, "sha256:old") for s in ("running", "restarting", "paused", "removing")]
    assert _plan(containers, IMAGES, retained=set()).containers == []


def test_images_are_removed_by_tag_else_by_digest():
    assert APP_41.refs == ["registry/app:41"]
    assert BY_DIGEST.refs == ["registry/tool@sha256:d1"]
    assert DANGLING.refs == [] and DANGLING.dangling and not BY_DIGEST.dangling


def test_retained_file_format():
    text = "# releases kept for rollback\nregistry/app:43\n\n  registry/app:42  # previous\nsha256:41\n"
    assert gc.parse_retained(text) == ["registry/app:43", "registry/app:42", "sha256:41"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-11-25T01:22:29.997633005Z", 1732497749.997633),
        ("2024-11-25T01:22:29Z", 1732497749.0),
        ("2024-11-25T01:22:29.5Z", 1732497749.5),
        ("2024-11-25T02:22:29.1+01:00", 1732497749.1),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
    ],
)
def test_docker_timestamps(text, expected):
    assert gc.parse_time(text) == pytest.approx(expected) if expected else gc.parse_time(text) is None


def test_container_and_image_from_docker_inspect():
    container = gc.container_from_inspect(
        {
            "Id": "c1",
            "Name": "/web-43",
            "Created": "2024-11-25T01:00:00Z",
            "Image": "sha256:43",
            "State": {"Status": "exited", "FinishedAt": "2024-11-25T02:00:00.123Z"},
            "Config": {"Labels": None},
        }
    )
    assert (container.name, container.status, container.image_id, container.labels) == (
        "web-43",
        "exited",
        "sha256:43",
        {},
    )
    assert container.finished - container.created == pytest.approx(3600.123)
    image = gc.image_from_inspect({"Id": "sha256:1", "RepoTags": None, "RepoDigests": ["r@sha256:x"]})
    assert image.refs == ["r@sha256:x"]
