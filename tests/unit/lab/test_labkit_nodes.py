"""Unit tests for lab/labkit/nodes.py and images.py (the parts that need no lab).

``attach_script`` is the shell the lab runs inside a node to make its block devices follow the volume
attachments. It writes under /dev and /run/lab, so the behaviour tests run it for real with ``sh``
against a temporary tree: its /dev/ and /run/lab paths are rewritten into the tree (``<tmp>/dev/null``
is a link to the real /dev/null). Making block device nodes needs CAP_MKNOD: those tests run as root only.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from labkit import config, images, nodes
from labkit.nodes import Attachment, attach_script

needs_mknod = pytest.mark.skipif(os.geteuid() != 0, reason="making block device nodes needs root")


# --- structure ----------------------------------------------------------------------------------------


def test_by_id_link_name_is_nitro_style():
    att = Attachment("vol-0123456789abcdef0", "/dev/sdf", "/dev/loop3", 3)
    assert att.link == "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"


def test_script_without_attachments_wants_nothing_and_makes_no_device():
    script = attach_script([])
    assert "want=''" in script
    assert not [ln for ln in script.splitlines() if ln.startswith(("node ", "ln "))]
    # The node's boot waits for this before `mount -a`: it must be the last thing done.
    assert script.rstrip().endswith("touch /run/lab/devices-ready")


def test_script_lists_every_wanted_link_once():
    atts = [Attachment("vol-aaa", "/dev/sdf", "/dev/loop1", 1), Attachment("vol-bbb", "/dev/sdg", "/dev/loop9", 9)]
    script = attach_script(atts)
    assert f"want='{atts[0].link} {atts[1].link}'" in script
    assert "ln -sfn ../../sdf /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_volaaa" in script
    assert "node /dev/sdg 7:9 7 9" in script


@pytest.mark.parametrize("device,ok", [("/dev/sdf", True), ("/dev/xvdh", True), ("/dev/nvme1n1", True),
                                       ("sdf", False), ("/dev/../etc/passwd", False), ("/dev/sd f", False),
                                       ("/dev/sdf;reboot", False), ("/dev/", False)])
def test_device_names_are_checked_before_they_reach_the_shell(device, ok):
    assert bool(nodes.DEVICE_RE.match(device)) is ok


# --- behaviour: the script run for real against a temporary /dev and /run/lab -----------------------------


def run_script(root: Path, atts: list[Attachment]) -> None:
    script = attach_script(atts).replace("/run/lab", f"{root}/run/lab").replace("/dev/", f"{root}/dev/")
    (root / "dev").mkdir(exist_ok=True)
    if not (root / "dev" / "null").is_symlink():
        (root / "dev" / "null").symlink_to("/dev/null")
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, f"attach script failed:\n{proc.stderr}\n--- script ---\n{script}"


def att(vol: str, device: str, minor: int) -> Attachment:
    return Attachment(vol, device, f"/dev/loop{minor}", minor)


def in_root(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def block(path: Path) -> tuple[int, int]:
    st = path.lstat()
    assert stat.S_ISBLK(st.st_mode), f"{path} is not a block device"
    return os.major(st.st_rdev), os.minor(st.st_rdev)


@needs_mknod
def test_attach_creates_devices_and_link(tmp_path):
    a = att("vol-0abc", "/dev/sdf", 42)
    run_script(tmp_path, [a])
    assert block(tmp_path / "dev/sdf") == (nodes.LOOP_MAJOR, 42)
    # The loop device node too: blkid finds filesystems (UUID= in fstab) through /proc/partitions' names.
    assert block(tmp_path / "dev/loop42") == (nodes.LOOP_MAJOR, 42)
    link = in_root(tmp_path, a.link)
    assert os.readlink(link) == "../../sdf"
    assert link.resolve() == tmp_path / "dev/sdf"
    assert (tmp_path / "run/lab/devices-ready").exists()
    assert (tmp_path / "run/lab/attached").read_text().split() == [
        str(in_root(tmp_path, a.link)), str(tmp_path / "dev/sdf"), str(tmp_path / "dev/loop42")]


@needs_mknod
def test_attach_is_idempotent_and_fixes_wrong_nodes(tmp_path):
    a = att("vol-0abc", "/dev/sdf", 42)
    run_script(tmp_path, [a])
    ino = (tmp_path / "dev/sdf").lstat().st_ino
    run_script(tmp_path, [a])
    assert (tmp_path / "dev/sdf").lstat().st_ino == ino, "a correct device node is left alone"
    # The same device name now backed by another loop device: the node is remade.
    b = att("vol-0abc", "/dev/sdf", 43)
    run_script(tmp_path, [b])
    assert block(tmp_path / "dev/sdf") == (nodes.LOOP_MAJOR, 43)


@needs_mknod
def test_detach_removes_only_what_is_no_longer_wanted(tmp_path):
    a = att("vol-0aaa", "/dev/sdf", 40)
    b = att("vol-0bbb", "/dev/sdg", 41)
    run_script(tmp_path, [a, b])
    assert in_root(tmp_path, a.link).is_symlink() and in_root(tmp_path, b.link).is_symlink()
    run_script(tmp_path, [b])
    assert not in_root(tmp_path, a.link).is_symlink()
    assert not (tmp_path / "dev/sdf").exists() and not (tmp_path / "dev/loop40").exists()
    assert in_root(tmp_path, b.link).resolve() == tmp_path / "dev/sdg"
    assert block(tmp_path / "dev/loop41") == (nodes.LOOP_MAJOR, 41)
    run_script(tmp_path, [])
    assert list((tmp_path / "dev/disk/by-id").iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "dev").iterdir()) == ["disk", "null"]
    assert (tmp_path / "run/lab/attached").read_text() == ""


@needs_mknod
def test_another_volume_at_a_freed_device_name(tmp_path):
    """Detach vol A from /dev/sdf and attach vol B there in one pass: B's link and node are what remain."""
    a = att("vol-0aaa", "/dev/sdf", 40)
    b = att("vol-0bbb", "/dev/sdf", 41)
    run_script(tmp_path, [a])
    run_script(tmp_path, [b])
    assert not in_root(tmp_path, a.link).is_symlink()
    assert in_root(tmp_path, b.link).resolve() == tmp_path / "dev/sdf"
    assert block(tmp_path / "dev/sdf") == (nodes.LOOP_MAJOR, 41)
    assert not (tmp_path / "dev/loop40").exists()


# --- images: packages and recipe hash --------------------------------------------------------------------


@pytest.fixture
def images_dir(tmp_path, monkeypatch):
    img = tmp_path / "demo"
    img.mkdir()
    (img / "packages.txt").write_text("# a demo image\ncurl\n\nsudo  # for admin\ncurl\n  bash\n")
    (img / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\n")
    monkeypatch.setattr(config, "IMAGES_DIR", tmp_path)
    return img


def test_packages_strip_comments_blanks_and_duplicates(images_dir):
    assert images.packages("demo") == ["bash", "curl", "sudo"]


def test_recipe_hash_is_stable(images_dir):
    build = images.Build("demo", "latest")
    assert images.recipe_hash(build) == images.recipe_hash(images.Build("demo", "other-tag"))
    assert len(images.recipe_hash(build)) == 16


def test_recipe_hash_follows_the_image_files(images_dir):
    build = images.Build("demo", "latest")
    before = images.recipe_hash(build)
    (images_dir / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nRUN true\n")
    changed = images.recipe_hash(build)
    assert changed != before
    (images_dir / "sub").mkdir()
    (images_dir / "sub" / "file").write_text("x")
    assert images.recipe_hash(build) not in (before, changed)
    # A file's name is part of the recipe, not only its content.
    with_file = images.recipe_hash(build)
    (images_dir / "sub" / "file").rename(images_dir / "sub" / "renamed")
    assert images.recipe_hash(build) != with_file


def test_recipe_hash_ignores_pycache(images_dir):
    build = images.Build("demo", "latest")
    before = images.recipe_hash(build)
    (images_dir / "__pycache__").mkdir()
    (images_dir / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert images.recipe_hash(build) == before


def test_recipe_hash_follows_packages_and_build_args(images_dir):
    build = images.Build("demo", "latest")
    before = images.recipe_hash(build)
    rootfs_before = images.rootfs_ref("demo")
    assert images.recipe_hash(images.Build("demo", "1", {"APP_RELEASE": "1"})) != before
    assert images.recipe_hash(images.Build("demo", "1", {"APP_RELEASE": "1"})) != \
        images.recipe_hash(images.Build("demo", "2", {"APP_RELEASE": "2"}))
    # Only a comment: the package set (and the root filesystem it makes) is the same.
    (images_dir / "packages.txt").write_text("bash\ncurl\nsudo\n")
    assert images.rootfs_ref("demo") == rootfs_before
    (images_dir / "packages.txt").write_text("bash\ncurl\nsudo\nless\n")
    assert images.rootfs_ref("demo") != rootfs_before
    assert images.recipe_hash(build) != before


def test_every_lab_build_has_a_recipe():
    for build in images.BUILDS:
        assert images.packages(build.name), f"{build.name}: empty packages.txt"
        assert (images.recipe_dir(build.name) / "Dockerfile").exists()
        assert len(images.recipe_hash(build)) == 16
