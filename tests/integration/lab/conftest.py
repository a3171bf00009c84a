"""Fixtures for the lab's integration tests: they drive the real lab (moto_server, node containers,
loop devices, the haproxy balancer) through the EC2/ELBv2 APIs, as the collection would.

The ``lab`` session fixture makes sure the lab is up. When it was already up (it may be shared with
other sessions), it is left up; when this session had to bring it up, it takes it down at the end.
Every cloud object a test creates is named ``itest-…`` and removed in fixture teardown.

Run with ``.venv/bin/pytest tests/integration/lab -v`` (needs Docker, losetup and root, like the lab).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from lablib.lab import Cloud, Lab, ensure_lab, labctl

HERE = Path(__file__).resolve().parent


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: needs the local lab (moto_server, Docker, loop devices); slow")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The running lab: boto3 clients on its endpoint, its state, ssh/materialise/wait_until helpers."""
    if not shutil.which("docker"):
        pytest.fail("docker is not installed: the lab tests need it (`make setup` installs and starts it)")
    the_lab = ensure_lab()
    try:
        yield the_lab
    finally:
        if the_lab.started_here:
            labctl("down", timeout=600)


@pytest.fixture
def cloud(lab: Lab) -> Iterator[Cloud]:
    """Per-test EC2 objects (instances, volumes), removed at the end of the test even when it fails."""
    c = Cloud(lab)
    try:
        yield c
    finally:
        c.cleanup()
