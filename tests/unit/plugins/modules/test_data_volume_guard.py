"""data_volume_guard run end to end, as Ansible runs it: a separate Python process fed a JSON args file.

The by-id links live in a temp dir. Where a test needs a real block device and a real mount, it uses the one
holding this test's temp dir (the machine's own disk, read only: nothing is mounted or written); where that file
system has no device node (overlay or tmpfs roots in containers) those tests fail, saying so, rather than skip.
One test feeds the module a mountinfo file in process, to show a mount at a temp dir without mounting anything.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.railsdeploy.aws.plugins.module_utils._ebs_device import by_id_name, parse_mountinfo

REPO_ROOT = Path(__file__).resolve().parents[4]
MODULE = REPO_ROOT / "plugins" / "modules" / "data_volume_guard.py"
VOLUME_ID = "vol-0123456789abcdef0"


def run(tmp_path: Path, **args) -> dict:
    args_file = tmp_path / f"args-{time.monotonic_ns()}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))  # includes build/collections
    process = subprocess.run(
        [sys.executable, str(MODULE), str(args_file)], env=env, capture_output=True, text=True, timeout=60
    )
    assert process.stdout, f"module printed nothing; stderr: {process.stderr}"
    result = json.loads(process.stdout)
    result["rc"] = process.returncode
    return result


def link_volume(by_id: Path, target: str | Path, volume_id: str = VOLUME_ID) -> Path:
    by_id.mkdir(parents=True, exist_ok=True)
    link = by_id / by_id_name(volume_id)
    link.symlink_to(target)
    return link


def block_device_of(path: Path) -> tuple[str, dict[str, str]] | None:
    """The device node and the mountinfo entry of the file system holding ``path``, if it has a device node."""
    dev = os.stat(path).st_dev
    major_minor = f"{os.major(dev)}:{os.minor(dev)}"
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        mounts = [e for e in parse_mountinfo(handle.read()) if e["major_minor"] == major_minor and e["root"] == "/"]
    if not mounts:
        return None
    for name in sorted(os.listdir("/dev")):
        node = os.path.join("/dev", name)
        try:
            st = os.stat(node)
        except OSError:
            continue
        if stat.S_ISBLK(st.st_mode) and st.st_rdev == dev:
            return node, mounts[-1]
    return None


@pytest.fixture
def real_disk(tmp_path: Path) -> tuple[str, dict[str, str]]:
    found = block_device_of(tmp_path)
    # Not a skip: a machine where this cannot be checked must say so, not pass in silence.
    assert found is not None, "the temp dir's file system has no block device node in /dev: run on a real disk"
    return found


def test_the_mount_point_of_the_volume_passes(tmp_path: Path, real_disk):
    device, mount = real_disk
    link_volume(tmp_path / "by-id", device)

    result = run(tmp_path, path=mount["mount_point"], volume_id=VOLUME_ID, by_id_dir=str(tmp_path / "by-id"))

    assert result.get("reason") != "read_only", "the temp dir's file system is mounted read-only: run on a writable one"
    assert result["rc"] == 0, result
    assert result["changed"] is False
    assert result["found_by"] == "by-id"
    assert result["device"] == os.path.realpath(device)
    assert result["mount"]["mount_point"] == mount["mount_point"]
    assert result["mount"]["major_minor"] == result["major_minor"]
    assert "owner" not in result  # no file attributes added for a returned "path"


def test_check_mode_passes_the_same(tmp_path: Path, real_disk):
    device, mount = real_disk
    link_volume(tmp_path / "by-id", device)

    result = run(
        tmp_path,
        path=mount["mount_point"],
        volume_id=VOLUME_ID,
        by_id_dir=str(tmp_path / "by-id"),
        _ansible_check_mode=True,
    )

    assert result.get("reason") != "read_only", "the temp dir's file system is mounted read-only: run on a writable one"
    assert result["rc"] == 0, result
    assert result["changed"] is False


def test_a_plain_directory_on_the_same_disk_is_refused(tmp_path: Path, real_disk):
    """The old shell scripts' failure: /mnt/ebs-a exists but the volume is not mounted, so it is a directory on the
    root disk."""
    device, mount = real_disk
    link_volume(tmp_path / "by-id", device)
    data = tmp_path / "mnt" / "ebs-a"
    data.mkdir(parents=True)

    result = run(tmp_path, path=str(data), volume_id=VOLUME_ID, by_id_dir=str(tmp_path / "by-id"))

    assert result["rc"] == 1
    assert result["failed"] is True
    assert result["reason"] == "not_a_mount_point"
    assert result["mount"] is None
    assert result["msg"].startswith(f"{data} is not a mount point: nothing is mounted there")
    assert f"the file system mounted at {mount['mount_point']}" in result["msg"]
    assert f"Mount the data volume at {data}" in result["msg"]
    assert list(data.iterdir()) == []  # the guard wrote nothing


def test_a_missing_path_is_refused_and_not_created(tmp_path: Path, real_disk):
    device, _mount = real_disk
    link_volume(tmp_path / "by-id", device)
    missing = tmp_path / "mnt" / "ebs-a"

    result = run(tmp_path, path=str(missing), volume_id=VOLUME_ID, by_id_dir=str(tmp_path / "by-id"))

    assert result["reason"] == "path_missing"
    assert f"{missing} does not exist" in result["msg"]
    assert not missing.exists()


def test_symlinks_in_the_path_are_resolved(tmp_path: Path, real_disk):
    device, mount = real_disk
    link_volume(tmp_path / "by-id", device)
    alias = tmp_path / "data"
    alias.symlink_to(mount["mount_point"])

    result = run(tmp_path, path=str(alias), volume_id=VOLUME_ID, by_id_dir=str(tmp_path / "by-id"))

    assert result["guarded_path"] == mount["mount_point"]
    assert result.get("reason") in (None, "read_only"), result


def test_a_volume_that_is_not_attached_is_refused(tmp_path: Path):
    (tmp_path / "by-id").mkdir()
    link_volume(tmp_path / "by-id", tmp_path / "gone")  # a dangling link is not a device

    result = run(
        tmp_path, path=str(tmp_path), volume_id=VOLUME_ID, by_id_dir=str(tmp_path / "by-id"), device_name="xvdz"
    )

    assert result["failed"] is True
    assert result["reason"] == "volume_not_attached"
    assert result["device"] is None
    msg = result["msg"]
    assert f"EBS volume {VOLUME_ID} is not attached to this node" in msg
    for looked in (tmp_path / "by-id" / by_id_name(VOLUME_ID), "/dev/xvdz"):
        assert str(looked) in msg
    assert f"mount it at {tmp_path}" in msg


def test_a_link_to_something_that_is_not_a_block_device_is_refused(tmp_path: Path):
    fake = tmp_path / "nvme1n1"
    fake.write_bytes(b"")
    link_volume(tmp_path / "by-id", fake)

    result = run(tmp_path, path=str(tmp_path), volume_id=VOLUME_ID, by_id_dir=str(tmp_path / "by-id"))

    assert result["reason"] == "not_a_block_device"
    assert "is not a block device" in result["msg"]


@pytest.mark.parametrize("volume_id", ["vol-XYZ", "i-0123456789abcdef0", ""])
def test_an_invalid_volume_id_is_refused(tmp_path: Path, volume_id: str):
    result = run(tmp_path, path="/mnt/ebs-a", volume_id=volume_id)

    assert result["failed"] is True
    assert "vol-" in result["msg"]


def test_a_relative_path_is_refused(tmp_path: Path):
    result = run(tmp_path, path="mnt/ebs-a", volume_id=VOLUME_ID)

    assert result["failed"] is True
    assert "absolute" in result["msg"]


def test_a_mount_stacked_on_the_volume_is_refused(tmp_path: Path, real_disk, monkeypatch, capsys):
    """In process, with a mountinfo in which the volume is mounted at a temp dir and a tmpfs on top of it
    (nothing is really mounted): what processes see there, the topmost mount, decides."""
    from ansible.module_utils.testing import patch_module_args

    from ansible_collections.railsdeploy.aws.plugins.modules import data_volume_guard

    device, mount = real_disk
    link_volume(tmp_path / "by-id", device)
    target = tmp_path / "ebs-a"
    target.mkdir()
    mountinfo = tmp_path / "mountinfo"
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        real = handle.read()
    # The disk of the temp dir claimed at the temp dir, then a tmpfs claimed on top of it.
    mountinfo.write_text(
        real
        + f"9001 1 {mount['major_minor']} / {target} rw - ext4 {device} rw\n"
        + f"9002 9001 0:4242 / {target} rw - tmpfs tmpfs rw\n"
    )
    monkeypatch.setattr(data_volume_guard, "MOUNTINFO", str(mountinfo))

    with (
        patch_module_args({"path": str(target), "volume_id": VOLUME_ID, "by_id_dir": str(tmp_path / "by-id")}),
        pytest.raises(SystemExit) as exit,
    ):
        data_volume_guard.main()
    result = json.loads(capsys.readouterr().out)

    assert exit.value.code == 1
    assert result["reason"] == "other_device"
    assert result["mount"]["source"] == "tmpfs"
    assert f"{target} is a mount of tmpfs (0:4242, tmpfs), not of EBS volume {VOLUME_ID}" in result["msg"]
    assert str(target) in result["msg"].split("which is mounted at ")[1].split(". ")[0]
