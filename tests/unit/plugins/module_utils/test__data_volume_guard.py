"""The guard's decision for the situations a node can be in, described as the kernel shows them (mountinfo)."""

from __future__ import annotations

import pytest

from ansible_collections.railsdeploy.aws.plugins.module_utils._data_volume_guard import (
    HIDDEN,
    NO_PATH,
    NOT_A_MOUNT_POINT,
    NOT_ATTACHED,
    OTHER_DEVICE,
    READ_ONLY,
    SUBDIRECTORY,
    containing_mount,
    judge,
    top_mount_at,
)
from ansible_collections.railsdeploy.aws.plugins.module_utils._ebs_device import parse_mountinfo

VOL = "vol-0123456789abcdef0"
DEVICE = "/dev/nvme1n1"
DEVICE_MM = "259:3"
LINKS = {"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0": DEVICE, "/dev/sdf": DEVICE}

ROOT = "27 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n"
DATA = "40 27 259:3 / /mnt/ebs-a rw,noatime shared:20 - ext4 /dev/nvme1n1 rw\n"
OTHER = "41 27 259:5 / /mnt/ebs-a rw,noatime shared:21 - ext4 /dev/nvme2n1 rw\n"


def resolve(path: str) -> str:
    return LINKS.get(path, path)


def verdict(mountinfo: str, path: str = "/mnt/ebs-a", path_mm: str | None = DEVICE_MM, **kwargs):
    args = dict(device=DEVICE, device_major_minor=DEVICE_MM, resolve=resolve)
    args.update(kwargs)
    return judge(path, VOL, entries=parse_mountinfo(mountinfo), path_major_minor=path_mm, **args)


def test_the_mounted_volume_passes_and_reports_the_mount():
    result = verdict(ROOT + DATA)

    assert result.ok, result.msg
    assert result.reason == ""
    assert result.mount == {
        "mount_point": "/mnt/ebs-a",
        "root": "/",
        "fstype": "ext4",
        "source": "/dev/nvme1n1",
        "options": "rw,noatime",
        "major_minor": "259:3",
    }


@pytest.mark.parametrize(
    "source",
    [
        "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0",  # mounted through the link
        "/dev/loop0",  # another name for the same device numbers (the lab: /dev/sdf is loop0)
        "UUID=not-resolvable",
    ],
)
def test_the_volume_is_recognised_by_device_numbers_whatever_the_source_name(source):
    result = verdict(ROOT + f"40 27 259:3 / /mnt/ebs-a rw - ext4 {source} rw\n")

    assert result.ok, result.msg


def test_a_directory_on_the_root_disk_is_refused_naming_the_disk_and_the_fix():
    result = verdict(ROOT, path_mm="259:1")

    assert not result.ok
    assert result.reason == NOT_A_MOUNT_POINT
    assert result.mount is None
    assert "/mnt/ebs-a is not a mount point: nothing is mounted there" in result.msg
    assert "/dev/nvme0n1p1 (259:1, ext4) - the root disk" in result.msg
    assert f"{VOL} (/dev/nvme1n1, 259:3) is not mounted anywhere" in result.msg
    assert "`mount /mnt/ebs-a`" in result.msg and "playbooks/provision.yml" in result.msg


def test_a_volume_mounted_elsewhere_is_named():
    result = verdict(ROOT + "40 27 259:3 / /srv/data rw - ext4 /dev/nvme1n1 rw\n", path_mm="259:1")

    assert result.reason == NOT_A_MOUNT_POINT
    assert "is mounted at /srv/data" in result.msg


def test_a_missing_path_is_refused():
    result = verdict(ROOT, path_mm=None)

    assert result.reason == NO_PATH
    assert "/mnt/ebs-a does not exist: nothing is mounted there" in result.msg


def test_another_device_mounted_there_is_refused_naming_both():
    result = verdict(ROOT + OTHER, path_mm="259:5")

    assert result.reason == OTHER_DEVICE
    assert "/mnt/ebs-a is a mount of /dev/nvme2n1 (259:5, ext4), not of EBS volume" in result.msg
    assert "(/dev/nvme1n1, 259:3)" in result.msg
    assert result.mount["source"] == "/dev/nvme2n1"


def test_a_tmpfs_over_the_path_is_refused():
    result = verdict(ROOT + "42 27 0:45 / /mnt/ebs-a rw - tmpfs tmpfs rw\n", path_mm="0:45")

    assert result.reason == OTHER_DEVICE
    assert "tmpfs (0:45, tmpfs)" in result.msg


def test_the_topmost_of_stacked_mounts_decides():
    # The volume was mounted, then something else on top of it: processes see the other one.
    stacked = ROOT + DATA + "41 40 259:5 / /mnt/ebs-a rw - ext4 /dev/nvme2n1 rw\n"
    assert verdict(stacked, path_mm="259:5").reason == OTHER_DEVICE
    # ... and the other way round.
    stacked = ROOT + OTHER + "42 41 259:3 / /mnt/ebs-a rw - ext4 /dev/nvme1n1 rw\n"
    assert verdict(stacked).ok


def test_a_bind_mount_of_a_subdirectory_of_the_volume_is_refused():
    result = verdict(ROOT + "40 27 259:3 /postgres /mnt/ebs-a rw - ext4 /dev/nvme1n1 rw\n")

    assert result.reason == SUBDIRECTORY
    assert "bind mount of the directory /postgres" in result.msg


def test_a_mount_hidden_by_a_mount_above_it_is_refused():
    # /mnt/ebs-a is in mountinfo, but /mnt was mounted over afterwards: the path is on that tmpfs now.
    hidden = ROOT + DATA + "50 27 0:60 / /mnt rw - tmpfs tmpfs rw\n"
    result = verdict(hidden, path_mm="0:60")

    assert result.reason == HIDDEN
    assert "hidden" in result.msg and "0:60" in result.msg


@pytest.mark.parametrize(
    ("options", "super_options"),
    [("ro,noatime", "rw"), ("rw,noatime", "ro,errors=remount-ro")],
)
def test_a_read_only_mount_is_refused_unless_allowed(options, super_options):
    mountinfo = ROOT + f"40 27 259:3 / /mnt/ebs-a {options} - ext4 /dev/nvme1n1 {super_options}\n"

    result = verdict(mountinfo)
    assert result.reason == READ_ONLY
    assert "read-only" in result.msg and "mount -o remount,rw /mnt/ebs-a" in result.msg

    assert verdict(mountinfo, writable=False).ok


def test_errors_remount_ro_alone_is_not_read_only():
    assert verdict(ROOT + "40 27 259:3 / /mnt/ebs-a rw - ext4 /dev/nvme1n1 rw,errors=remount-ro\n").ok


def test_a_volume_not_attached_is_refused_saying_what_is_at_the_path():
    result = verdict(ROOT + OTHER, device=None, device_major_minor=None, path_mm="259:5", looked_at=["/x/by-id/l"])

    assert result.reason == NOT_ATTACHED
    assert f"EBS volume {VOL} is not attached to this node (looked at /x/by-id/l)" in result.msg
    assert "/mnt/ebs-a is a mount of /dev/nvme2n1" in result.msg
    assert "Attach the volume" in result.msg


def test_a_volume_not_attached_and_nothing_mounted():
    result = verdict(ROOT, device=None, device_major_minor=None, path_mm="259:1")

    assert result.reason == NOT_ATTACHED
    assert "/mnt/ebs-a is not a mount point" in result.msg


def test_paths_with_spaces_are_matched_unescaped():
    mountinfo = ROOT + "40 27 259:3 / /srv/pg\\040data rw - ext4 /dev/nvme1n1 rw\n"

    assert verdict(mountinfo, path="/srv/pg data").ok


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/mnt/ebs-a/postgres", "/mnt/ebs-a"), ("/mnt/ebs-a", "/mnt/ebs-a"), ("/mnt/ebs-ab", "/"), ("/", "/")],
)
def test_containing_mount_is_the_longest_prefix_on_directory_boundaries(path, expected):
    assert containing_mount(parse_mountinfo(ROOT + DATA), path)["mount_point"] == expected


def test_top_mount_at_without_parent_links_takes_the_last():
    entries = parse_mountinfo("1 0 8:1 / /a rw - ext4 /dev/a rw\n2 0 8:2 / /a rw - ext4 /dev/b rw\n")

    assert top_mount_at(entries, "/a")["source"] == "/dev/b"
    assert top_mount_at(entries, "/b") is None
