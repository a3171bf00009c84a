# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure helpers for finding an EBS volume's block device on a node.

Private to this collection (leading underscore): no compatibility promise to other collections.
Nothing here runs commands; only DeviceFinder and major_minor look at the file system (the paths they are given).
This code runs on the managed node: keep it importable on every Python that ansible-core 2.19 supports there.
"""

from __future__ import annotations

import os
import re
import time
import typing as t

VOLUME_ID_RE = re.compile(r"vol-[0-9a-f]{8,17}")  # use with fullmatch: "$" would accept a trailing newline

# udev (60-persistent-storage.rules) names NVMe disks "nvme-<model>_<serial>"; for EBS the model is
# "Amazon Elastic Block Store" and the serial is the volume id without its dash.
BY_ID_PREFIX = "nvme-Amazon_Elastic_Block_Store_"

_OCTAL_ESCAPE_RE = re.compile(r"\\([0-7]{3})")

# The options a module finds the volume's device by (DeviceFinder's arguments), as ebs_device_info and
# data_volume_guard take them; the doc fragment railsdeploy.aws.ebs_device documents them.
DEVICE_OPTIONS = dict(
    volume_id=dict(type="str", required=True),
    device_name=dict(type="str"),
    by_id_dir=dict(type="path", default="/dev/disk/by-id"),
)


def volume_id_error(volume_id: str) -> str | None:
    """Return why ``volume_id`` is not an EBS volume id, or None when it is one."""
    if VOLUME_ID_RE.fullmatch(volume_id or ""):
        return None
    return (
        f"volume_id {volume_id!r} is not an EBS volume id: expected 'vol-' followed by 8 to 17 lower-case hex digits "
        "(e.g. vol-0123456789abcdef0), as shown by amazon.aws.ec2_vol_info or the EC2 console"
    )


def by_id_name(volume_id: str) -> str:
    """File name of the udev link for an EBS volume on a Nitro (NVMe) instance.

    >>> by_id_name("vol-0123456789abcdef0")
    'nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0'
    """
    return BY_ID_PREFIX + volume_id.replace("-", "", 1)


def device_name_candidates(device_name: str | None) -> list[str]:
    """Paths where a Xen instance shows a volume attached as ``device_name``.

    The EC2 API's device name is a request, not a promise: on Xen kernels ``/dev/sdf`` appears as
    ``/dev/xvdf`` (and ``/dev/sdf`` may exist as a compatibility link). Bare names get ``/dev/``.
    """
    if not device_name:
        return []
    path = device_name if device_name.startswith("/") else "/dev/" + device_name
    candidates = [path]
    directory, _sep, base = path.rpartition("/")
    if base.startswith("sd") and len(base) > 2:
        candidates.append(f"{directory}/xvd{base[2:]}")
    return candidates


def _unescape_blkid(value: str) -> str:
    # blkid -o export escapes shell-special characters (spaces, quotes, ...) with a backslash.
    out = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            out.append(next(chars, ""))
        else:
            out.append(char)
    return "".join(out)


def parse_blkid_export(text: str) -> dict[str, str]:
    """Parse ``blkid -o export`` output (KEY=value lines) into a dict.

    Only the first device's block is read; values are unescaped.
    """
    result: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            if result:
                break
            continue
        key, sep, value = line.partition("=")
        if not sep or not key:
            continue
        result[key] = _unescape_blkid(value)
    return result


def _unescape_mountinfo(value: str) -> str:
    # The kernel writes space, tab, newline and backslash in mountinfo paths as \ooo octal escapes.
    return _OCTAL_ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 8)), value)


def parse_mountinfo(text: str) -> list[dict[str, str]]:
    """Parse /proc/<pid>/mountinfo (see proc(5)) into dicts.

    Keys: ``mount_id``, ``parent_id``, ``major_minor``, ``root``, ``mount_point``, ``options``, ``fstype``,
    ``source``, ``super_options``. Malformed lines are skipped.
    """
    entries = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            separator = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < separator + 3:
            continue
        entries.append(
            {
                "mount_id": fields[0],
                "parent_id": fields[1],
                "major_minor": fields[2],
                "root": _unescape_mountinfo(fields[3]),
                "mount_point": _unescape_mountinfo(fields[4]),
                "options": fields[5],
                "fstype": fields[separator + 1],
                "source": _unescape_mountinfo(fields[separator + 2]),
                "super_options": fields[separator + 3] if len(fields) > separator + 3 else "",
            }
        )
    return entries


def mounts_of_device(
    entries: t.Iterable[dict[str, str]],
    device: str,
    resolve: t.Callable[[str], str],
    major_minor: str | None = None,
) -> list[dict[str, str]]:
    """Mount entries that mount ``device`` (a real path, symlinks resolved).

    An entry matches when its source is the device, its source resolves to the device through ``resolve``
    (e.g. a /dev/disk/by-id link, /dev/sdf -> /dev/nvme1n1), or its ``major:minor`` is the device's own
    (the source string can be a name from another mount namespace, e.g. inside a container).
    """
    matches = []
    for entry in entries:
        source = entry["source"]
        if source == device or (major_minor is not None and entry["major_minor"] == major_minor):
            matches.append(entry)
        elif source.startswith("/") and resolve(source) == device:
            matches.append(entry)
    return matches


def major_minor(rdev: int) -> str:
    """A block device's numbers as mountinfo writes them (``st_rdev`` of its node), e.g. ``259:3``."""
    return f"{os.major(rdev)}:{os.minor(rdev)}"


class DeviceFinder:
    """Looks for an EBS volume's device where udev and the kernel put it: the by-id link (Nitro), then the
    attachment's device name and its Xen twin. ebs_device_info and data_volume_guard search alike."""

    POLL_INTERVAL = 0.5

    def __init__(self, volume_id: str, device_name: str | None, by_id_dir: str) -> None:
        self.by_id_path = os.path.join(by_id_dir, by_id_name(volume_id))
        self.candidates = [("by-id", self.by_id_path)]
        self.candidates += [("device_name", path) for path in device_name_candidates(device_name)]

    @property
    def looked_at(self) -> list[str]:
        return [path for _found_by, path in self.candidates]

    def find_once(self) -> tuple[str, str] | None:
        """(how it was found, the real device path), or None."""
        for found_by, path in self.candidates:
            if os.path.exists(path):  # follows symlinks: a dangling by-id link does not count
                return found_by, os.path.realpath(path)
        return None

    def find(self, wait_timeout: int) -> tuple[str, str] | None:
        """As find_once, polling for at most ``wait_timeout`` seconds (a fresh attachment's link appears late)."""
        deadline = time.monotonic() + max(wait_timeout, 0)
        while True:
            found = self.find_once()
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(min(self.POLL_INTERVAL, max(deadline - time.monotonic(), 0)))
