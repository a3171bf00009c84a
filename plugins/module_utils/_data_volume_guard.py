# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The decision of the data_volume_guard module: is a path really the mounted data volume?

Private to this collection (leading underscore): no compatibility promise to other collections.
Pure code: the module gathers what the node shows (the volume's device and its major:minor, the entries of
/proc/self/mountinfo, the major:minor of the file system holding the path) and ``judge`` decides. Every
outcome is unit-testable without a node. This code runs on the managed node: keep it importable on every
Python that ansible-core 2.19 supports there.
"""

from __future__ import annotations

import posixpath
import typing as t

from ansible_collections.railsdeploy.aws.plugins.module_utils._ebs_device import mounts_of_device

# Why a path is not the data volume; also returned by the module as ``reason``.
NOT_ATTACHED = "volume_not_attached"
NO_PATH = "path_missing"
NOT_A_MOUNT_POINT = "not_a_mount_point"
OTHER_DEVICE = "other_device"
SUBDIRECTORY = "subdirectory_mounted"
HIDDEN = "mount_hidden"
READ_ONLY = "read_only"

MOUNT_KEYS = ("mount_point", "root", "fstype", "source", "options")


class Verdict(t.NamedTuple):
    ok: bool
    reason: str  # "" when ok
    msg: str
    mount: dict[str, str] | None  # the mount at the path, if any (MOUNT_KEYS plus major_minor)


def public_mount(entry: dict[str, str] | None) -> dict[str, str] | None:
    if entry is None:
        return None
    return {key: entry[key] for key in (*MOUNT_KEYS, "major_minor")}


def top_mount_at(entries: list[dict[str, str]], mount_point: str) -> dict[str, str] | None:
    """The mount a process sees at ``mount_point``: of mounts stacked there, the one nothing covers.

    A later mount on the same point has the earlier one as its parent (proc(5)); without parent links
    (hand-written entries) the last one listed wins, as in mount order.
    """
    here = [entry for entry in entries if entry["mount_point"] == mount_point]
    covered = {entry["parent_id"] for entry in here}
    uncovered = [entry for entry in here if entry["mount_id"] not in covered]
    return (uncovered or here or [None])[-1]


def containing_mount(entries: list[dict[str, str]], path: str) -> dict[str, str] | None:
    """The mount whose mount point is the longest prefix of ``path`` (the file system ``path`` is on)."""
    best = None
    for entry in entries:
        point = entry["mount_point"]
        if path == point or path.startswith(point.rstrip("/") + "/"):
            if best is None or len(point) >= len(best["mount_point"]):
                best = entry
    return best


def describe(entry: dict[str, str]) -> str:
    """``/dev/nvme1n1 (259:3, ext4)``; a bind mount of a subdirectory adds ``:/sub``."""
    root = "" if entry["root"] == "/" else f":{entry['root']}"
    return f"{entry['source']}{root} ({entry['major_minor']}, {entry['fstype']})"


def judge(
    path: str,
    volume_id: str,
    device: str | None,
    device_major_minor: str | None,
    entries: list[dict[str, str]],
    path_major_minor: str | None,
    resolve: t.Callable[[str], str] = posixpath.realpath,
    writable: bool = True,
    looked_at: t.Sequence[str] = (),
) -> Verdict:
    """Decide whether ``path`` is a mount point of the volume's device.

    ``path`` is the real path (symlinks resolved); ``device`` the volume's block device (None when it was
    not found on the node) with its ``major:minor``; ``entries`` are parsed mountinfo lines (see
    ``_ebs_device.parse_mountinfo``); ``path_major_minor`` is the st_dev of ``path`` (None when ``path``
    does not exist), i.e. the file system a process writing into ``path`` really writes to.
    """
    mount = top_mount_at(entries, path)
    volume = f"EBS volume {volume_id}"
    where = ""
    if device is not None:
        volume += f" ({device}, {device_major_minor})"
        elsewhere = [entry["mount_point"] for entry in mounts_of_device(entries, device, resolve, device_major_minor)]
        where = f"is mounted at {', '.join(elsewhere)}" if elsewhere else "is not mounted anywhere"
    how = (
        f"`mount {path}` uses its /etc/fstab entry; railsdeploy.aws's playbooks/provision.yml attaches the volume, "
        "formats it only when it is blank, and mounts it"
    )
    refuse = "Refusing to use it: data written there would not be on the data volume."

    if mount is not None:
        here = f"{path} is a mount of {describe(mount)}"
    elif path_major_minor is None:
        here = f"{path} does not exist: nothing is mounted there"
    else:
        below = containing_mount(entries, path)
        on = f"the file system mounted at {below['mount_point']}, {describe(below)}" if below else "another disk"
        on += " - the root disk" if below is not None and below["mount_point"] == "/" else ""
        here = f"{path} is not a mount point: nothing is mounted there, it is a directory on {on}"

    if device is None:
        looked = f" (looked at {', '.join(looked_at)})" if looked_at else ""
        return Verdict(
            False,
            NOT_ATTACHED,
            f"{volume} is not attached to this node{looked}, and {here}. {refuse} Attach the volume to this "
            "instance (playbooks/provision.yml does, with the volume found by its Name tag) and mount it at "
            f"{path}, then re-run.",
            public_mount(mount),
        )
    if mount is None:
        reason = NO_PATH if path_major_minor is None else NOT_A_MOUNT_POINT
        return Verdict(
            False,
            reason,
            f"{here}; {volume} {where}. {refuse} Mount the data volume at {path} ({how}), then re-run.",
            None,
        )
    if not mounts_of_device([mount], device, resolve, device_major_minor):
        return Verdict(
            False,
            OTHER_DEVICE,
            f"{here}, not of {volume}, which {where}. {refuse} Check that the right volume is attached, unmount "
            f"{path} and mount the data volume there ({how}), then re-run.",
            public_mount(mount),
        )
    if mount["root"] != "/":
        return Verdict(
            False,
            SUBDIRECTORY,
            f"{here}: a bind mount of the directory {mount['root']} of {volume}, not the volume itself. "
            f"Unmount it and mount the volume's file system at {path} ({how}), then re-run.",
            public_mount(mount),
        )
    if path_major_minor != mount["major_minor"]:
        return Verdict(
            False,
            HIDDEN,
            f"{here}, but the file system a process finds at {path} is {path_major_minor or 'unknown'}: the mount "
            f"is hidden by a later mount above it. {refuse} Unmount what covers it (see findmnt), then re-run.",
            public_mount(mount),
        )
    options = set(mount["options"].split(",")) | set(mount.get("super_options", "").split(","))
    if writable and "ro" in options:
        return Verdict(
            False,
            READ_ONLY,
            f"{here} - the data volume - but it is mounted read-only ({mount['options']}), often after the kernel "
            f"found file system errors. Check the kernel log (dmesg) and the file system (fsck), then remount it "
            f"read-write (`mount -o remount,rw {path}`) and re-run.",
            public_mount(mount),
        )
    return Verdict(True, "", f"{path} is the mount of {volume}.", public_mount(mount))
