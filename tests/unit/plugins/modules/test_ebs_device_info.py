"""ebs_device_info run end to end, as Ansible runs it: a separate Python process fed a JSON args file.

The node is simulated in a temp dir: regular files stand in for block devices, symlinks for the udev by-id
links, and small ``blkid`` / ``blockdev`` scripts first on PATH answer for those files (so the module's own
get_bin_path / run_command path runs). One test uses the real blkid on a real ext4 image when available.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.railsdeploy.aws.plugins.module_utils._ebs_device import by_id_name

REPO_ROOT = Path(__file__).resolve().parents[4]
MODULE = REPO_ROOT / "plugins" / "modules" / "ebs_device_info.py"
VOLUME_ID = "vol-0123456789abcdef0"
SIZE = 20 * 1024 * 1024

FAKE_BLKID = """\
#!/bin/sh
# Fake blkid: answers from <device>.blkid (exit 0), <device>.blkid-error (exit 4), else "nothing found" (exit 2).
for dev; do :; done
if [ -f "$dev.blkid-error" ]; then cat "$dev.blkid-error" >&2; exit 4; fi
if [ -f "$dev.blkid" ]; then cat "$dev.blkid"; exit 0; fi
exit 2
"""

FAKE_BLOCKDEV = """\
#!/bin/sh
# Fake blockdev: --getsize64 <file> prints the file's size.
[ "$1" = "--getsize64" ] || exit 1
stat -c %s "$2"
"""


class Node:
    """A temp dir laid out like the parts of a node that the module looks at."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.by_id = root / "disk" / "by-id"
        self.dev = root / "dev"
        self.bin = root / "bin"
        for directory in (self.by_id, self.dev, self.bin):
            directory.mkdir(parents=True)
        for name, script in (("blkid", FAKE_BLKID), ("blockdev", FAKE_BLOCKDEV)):
            path = self.bin / name
            path.write_text(script)
            path.chmod(0o755)

    def disk(self, name: str, blkid: str | None = None) -> Path:
        path = self.dev / name
        with path.open("wb") as handle:
            handle.truncate(SIZE)
        if blkid is not None:
            Path(f"{path}.blkid").write_text(textwrap.dedent(blkid))
        return path

    def link(self, volume_id: str, target: Path) -> Path:
        link = self.by_id / by_id_name(volume_id)
        link.symlink_to(os.path.relpath(target, self.by_id))  # udev makes relative links: ../../nvme1n1
        return link

    def env(self, fake_tools: bool = True) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # includes build/collections (conftest)
        if fake_tools:
            env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        return env

    def popen(self, fake_tools: bool = True, **args) -> subprocess.Popen:
        args.setdefault("by_id_dir", str(self.by_id))
        args_file = self.root / f"args-{time.monotonic_ns()}.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        return subprocess.Popen(
            [sys.executable, str(MODULE), str(args_file)],
            env=self.env(fake_tools),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, fake_tools: bool = True, **args) -> dict:
        return result_of(self.popen(fake_tools, **args))


def result_of(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=60)
    assert out, f"module printed nothing; stderr: {err}"
    result = json.loads(out)
    result["rc"] = process.returncode
    return result


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return Node(tmp_path)


EXT4 = """\
    DEVNAME=ignored
    LABEL=pg\\ data
    UUID=f1de6ac1-e4d5-474c-9fa2-4f311ab44dce
    TYPE=ext4
    USAGE=filesystem
"""


def test_found_via_by_id_link(node: Node):
    disk = node.disk("fake-nvme1n1", blkid=EXT4)
    link = node.link(VOLUME_ID, disk)

    result = node.run(volume_id=VOLUME_ID, device_name="/dev/sdf")

    assert result["rc"] == 0, result
    assert result["changed"] is False
    assert result["found_by"] == "by-id"
    assert result["device"] == str(disk)
    assert result["by_id_path"] == str(link)
    assert result["fstype"] == "ext4"
    assert result["uuid"] == "f1de6ac1-e4d5-474c-9fa2-4f311ab44dce"
    assert result["label"] == "pg data"
    assert result["pttype"] == ""
    assert result["size_bytes"] == SIZE
    assert result["mountpoints"] == []


def test_found_via_device_name_with_sd_to_xvd_mapping(node: Node):
    disk = node.disk("xvdf", blkid="TYPE=xfs\nUUID=1234\n")

    result = node.run(volume_id=VOLUME_ID, device_name=str(node.dev / "sdf"))

    assert result["rc"] == 0, result
    assert result["found_by"] == "device_name"
    assert result["device"] == str(disk)
    assert result["by_id_path"] == str(node.by_id / "nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0")
    assert result["fstype"] == "xfs"


def test_by_id_link_wins_over_device_name(node: Node):
    nvme = node.disk("fake-nvme2n1")
    node.disk("xvdf")
    node.link(VOLUME_ID, nvme)

    result = node.run(volume_id=VOLUME_ID, device_name=str(node.dev / "xvdf"))

    assert result["found_by"] == "by-id"
    assert result["device"] == str(nvme)


def test_link_of_another_volume_is_not_taken(node: Node):
    node.link("vol-0fffffffffffffff0", node.disk("fake-nvme3n1"))

    result = node.run(volume_id=VOLUME_ID)

    assert result.get("failed") is True, result
    assert VOLUME_ID in result["msg"]


def test_not_found_fails_naming_the_volume_paths_and_what_to_check(node: Node):
    node.link(VOLUME_ID, node.dev / "gone")  # a dangling link does not count as found

    result = node.run(volume_id=VOLUME_ID, device_name=str(node.dev / "sdf"))

    assert result["rc"] == 1
    assert result["failed"] is True
    msg = result["msg"]
    assert VOLUME_ID in msg
    for path in (node.by_id / by_id_name(VOLUME_ID), node.dev / "sdf", node.dev / "xvdf"):
        assert str(path) in msg
    assert "attached to this instance" in msg
    assert result["looked_at"] == [
        str(node.by_id / by_id_name(VOLUME_ID)),
        str(node.dev / "sdf"),
        str(node.dev / "xvdf"),
    ]


@pytest.mark.parametrize("volume_id", ["vol-XYZ", "i-0123456789abcdef0", "0123456789abcdef0"])
def test_invalid_volume_id_is_refused(node: Node, volume_id: str):
    result = node.run(volume_id=volume_id)

    assert result["failed"] is True
    assert volume_id in result["msg"]
    assert "vol-" in result["msg"]


def test_negative_wait_timeout_is_refused(node: Node):
    result = node.run(volume_id=VOLUME_ID, wait_timeout=-1)

    assert result["failed"] is True
    assert "wait_timeout" in result["msg"]


def test_wait_timeout_waits_for_a_link_that_appears_later(node: Node):
    disk = node.disk("fake-nvme1n1", blkid=EXT4)
    started = time.monotonic()
    process = node.popen(volume_id=VOLUME_ID, wait_timeout=30)
    attach = threading.Timer(1.5, node.link, args=(VOLUME_ID, disk))
    attach.start()
    try:
        result = result_of(process)
    finally:
        attach.cancel()
    elapsed = time.monotonic() - started

    assert result["rc"] == 0, result
    assert result["found_by"] == "by-id"
    assert result["device"] == str(disk)
    assert 1.5 <= elapsed < 25


def test_wait_timeout_gives_up_and_says_how_long_it_waited(node: Node):
    started = time.monotonic()
    result = node.run(volume_id=VOLUME_ID, wait_timeout=1)

    assert result["failed"] is True
    assert "after waiting 1s" in result["msg"]
    assert time.monotonic() - started >= 1


def test_no_filesystem_gives_empty_fstype_uuid_label(node: Node):
    node.link(VOLUME_ID, node.disk("fake-nvme1n1"))  # fake blkid exits 2: nothing found

    result = node.run(volume_id=VOLUME_ID)

    assert result["rc"] == 0, result
    assert (result["fstype"], result["uuid"], result["label"], result["pttype"]) == ("", "", "", "")
    assert result["size_bytes"] == SIZE


def test_partition_table_without_filesystem_is_reported(node: Node):
    node.link(VOLUME_ID, node.disk("fake-nvme1n1", blkid="PTUUID=5e1c0d3a\nPTTYPE=gpt\n"))

    result = node.run(volume_id=VOLUME_ID)

    assert result["fstype"] == ""
    assert result["pttype"] == "gpt"


def test_unreadable_device_fails_with_become_hint(node: Node):
    disk = node.disk("fake-nvme1n1")
    Path(f"{disk}.blkid-error").write_text("Permission denied\n")
    node.link(VOLUME_ID, disk)

    result = node.run(volume_id=VOLUME_ID)

    assert result["failed"] is True
    assert "Permission denied" in result["msg"]
    assert "become" in result["msg"]


def test_check_mode_reports_the_same(node: Node):
    node.link(VOLUME_ID, node.disk("fake-nvme1n1", blkid=EXT4))

    result = node.run(volume_id=VOLUME_ID, _ansible_check_mode=True)

    assert result["rc"] == 0, result
    assert result["changed"] is False
    assert result["fstype"] == "ext4"


def test_mountpoints_come_from_mountinfo_through_links(node: Node, monkeypatch, capsys):
    """In process, to point the module at a mountinfo that mounts the device through its by-id link."""
    from ansible.module_utils.testing import patch_module_args

    from ansible_collections.railsdeploy.aws.plugins.modules import ebs_device_info

    disk = node.disk("fake-nvme1n1", blkid=EXT4)
    link = node.link(VOLUME_ID, disk)
    mountinfo = node.root / "mountinfo"
    mountinfo.write_text(
        "27 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n"
        f"40 27 259:3 / /mnt/ebs-a rw,noatime shared:20 - ext4 {link} rw\n"
        f"41 27 259:3 /pgdata /srv/pg\\040data rw shared:20 - ext4 {disk} rw\n"
    )
    monkeypatch.setattr(ebs_device_info, "MOUNTINFO", str(mountinfo))
    monkeypatch.setenv("PATH", f"{node.bin}{os.pathsep}{os.environ.get('PATH', '')}")

    with patch_module_args({"volume_id": VOLUME_ID, "by_id_dir": str(node.by_id)}), pytest.raises(SystemExit) as exit:
        ebs_device_info.main()
    result = json.loads(capsys.readouterr().out)

    assert exit.value.code == 0, result
    assert result["mountpoints"] == ["/mnt/ebs-a", "/srv/pg data"]
    assert result["mounts"][1] == {
        "mount_point": "/srv/pg data",
        "root": "/pgdata",
        "fstype": "ext4",
        "source": str(disk),
        "options": "rw",
    }


SBIN_PATH = os.pathsep.join(["/usr/sbin", "/sbin", os.environ.get("PATH", "")])
MKFS_EXT4 = shutil.which("mkfs.ext4", path=SBIN_PATH)


@pytest.mark.skipif(
    not (MKFS_EXT4 and shutil.which("blkid", path=SBIN_PATH)), reason="needs e2fsprogs (mkfs.ext4), util-linux (blkid)"
)
def test_real_blkid_reads_a_real_ext4_image(node: Node):
    image = node.dev / "fake-nvme5n1"
    with image.open("wb") as handle:
        handle.truncate(SIZE)
    uuid = "3e6be9de-8139-11d1-9106-a43f08d823a6"
    subprocess.run([MKFS_EXT4, "-q", "-F", "-L", "pgdata", "-U", uuid, str(image)], check=True)
    node.link(VOLUME_ID, image)

    result = node.run(fake_tools=False, volume_id=VOLUME_ID)

    assert result["rc"] == 0, result
    assert (result["fstype"], result["label"], result["uuid"]) == ("ext4", "pgdata", uuid)
