from __future__ import annotations

import pytest

from ansible_collections.railsdeploy.aws.plugins.module_utils._ebs_device import (
    by_id_name,
    device_name_candidates,
    mounts_of_device,
    parse_blkid_export,
    parse_mountinfo,
    volume_id_error,
)


@pytest.mark.parametrize(
    "volume_id",
    ["vol-0123456789abcdef0", "vol-12345678", "vol-abcdef012"],
)
def test_valid_volume_ids_are_accepted(volume_id):
    assert volume_id_error(volume_id) is None


@pytest.mark.parametrize(
    "volume_id",
    [
        "",
        "vol-1234567",  # too short
        "vol-0123456789abcdef012",  # 18 digits, too long
        "vol-0123456789ABCDEF0",  # upper case
        "vol0123456789abcdef0",  # no dash
        "i-0123456789abcdef0",  # an instance id
        "vol-0123456789abcdefg",
        " vol-0123456789abcdef0",
        "vol-0123456789abcdef0\n",
        "/dev/nvme1n1",
    ],
)
def test_invalid_volume_ids_are_refused_with_the_expected_format(volume_id):
    error = volume_id_error(volume_id)
    assert error is not None
    assert repr(volume_id) in error
    assert "vol-" in error and "hex" in error


@pytest.mark.parametrize(
    ("volume_id", "expected"),
    [
        ("vol-0123456789abcdef0", "nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"),
        ("vol-12345678", "nvme-Amazon_Elastic_Block_Store_vol12345678"),
    ],
)
def test_by_id_name(volume_id, expected):
    assert by_id_name(volume_id) == expected


@pytest.mark.parametrize(
    ("device_name", "expected"),
    [
        (None, []),
        ("", []),
        ("/dev/sdf", ["/dev/sdf", "/dev/xvdf"]),
        ("sdf", ["/dev/sdf", "/dev/xvdf"]),
        ("/dev/sdba", ["/dev/sdba", "/dev/xvdba"]),
        ("/dev/xvdf", ["/dev/xvdf"]),
        ("xvdg", ["/dev/xvdg"]),
        ("/dev/nvme1n1", ["/dev/nvme1n1"]),
        ("/dev/sd", ["/dev/sd"]),
    ],
)
def test_device_name_candidates_map_sd_to_xvd(device_name, expected):
    assert device_name_candidates(device_name) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "DEVNAME=/dev/nvme1n1\nLABEL=pgdata\nUUID=f1de6ac1-e4d5-474c-9fa2-4f311ab44dce\nVERSION=1.0\n"
            "BLOCK_SIZE=4096\nTYPE=ext4\nUSAGE=filesystem\n",
            {
                "DEVNAME": "/dev/nvme1n1",
                "LABEL": "pgdata",
                "UUID": "f1de6ac1-e4d5-474c-9fa2-4f311ab44dce",
                "VERSION": "1.0",
                "BLOCK_SIZE": "4096",
                "TYPE": "ext4",
                "USAGE": "filesystem",
            },
            id="ext4",
        ),
        pytest.param(
            'DEVNAME=/dev/xvdf\nLABEL=my\\ data\\ \\"x\\"\nTYPE=xfs\n',
            {"DEVNAME": "/dev/xvdf", "LABEL": 'my data "x"', "TYPE": "xfs"},
            id="escaped-label",
        ),
        pytest.param(
            "DEVNAME=/dev/nvme2n1\nPTUUID=5e1c0d3a\nPTTYPE=gpt\n",
            {"DEVNAME": "/dev/nvme2n1", "PTUUID": "5e1c0d3a", "PTTYPE": "gpt"},
            id="partition-table-only",
        ),
        pytest.param("", {}, id="empty"),
        pytest.param(
            "DEVNAME=/dev/a\nTYPE=ext4\n\nDEVNAME=/dev/b\nTYPE=xfs\n",
            {"DEVNAME": "/dev/a", "TYPE": "ext4"},
            id="first-block-only",
        ),
        pytest.param("garbage line\nTYPE=ext4\n", {"TYPE": "ext4"}, id="junk-skipped"),
        pytest.param("LABEL=a=b\n", {"LABEL": "a=b"}, id="equals-in-value"),
    ],
)
def test_parse_blkid_export(text, expected):
    assert parse_blkid_export(text) == expected


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw,discard
40 27 259:3 / /mnt/ebs-a rw,noatime shared:20 - ext4 /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0abc rw
41 27 259:3 /pgdata /srv/pg\\040data rw,noatime shared:20 - ext4 /dev/nvme1n1 rw
42 27 7:3 / /mnt/lab rw - ext4 /dev/xvdf rw
43 27 0:50 / /run/user/0 rw,nosuid,nodev,relatime shared:250 master:7 - tmpfs tmpfs rw,size=1000k
broken line
"""


def test_parse_mountinfo_reads_fields_and_optional_tags():
    entries = parse_mountinfo(MOUNTINFO)
    assert len(entries) == 6
    assert entries[2] == {
        "mount_id": "40",
        "parent_id": "27",
        "major_minor": "259:3",
        "root": "/",
        "mount_point": "/mnt/ebs-a",
        "options": "rw,noatime",
        "fstype": "ext4",
        "source": "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0abc",
        "super_options": "rw",
    }
    assert entries[3]["mount_point"] == "/srv/pg data"
    assert entries[3]["root"] == "/pgdata"
    assert entries[5]["fstype"] == "tmpfs"
    assert entries[5]["source"] == "tmpfs"


def test_parse_mountinfo_empty():
    assert parse_mountinfo("") == []


LINKS = {
    "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0abc": "/dev/nvme1n1",
    "/dev/sdf": "/dev/nvme1n1",
}


def resolve(path):
    return LINKS.get(path, path)


@pytest.mark.parametrize(
    ("device", "major_minor", "expected"),
    [
        pytest.param("/dev/nvme1n1", None, ["/mnt/ebs-a", "/srv/pg data"], id="by-source-and-link"),
        pytest.param("/dev/nvme1n1", "259:3", ["/mnt/ebs-a", "/srv/pg data"], id="by-major-minor-too"),
        pytest.param("/dev/loop3", "7:3", ["/mnt/lab"], id="source-from-another-namespace"),
        pytest.param("/dev/loop3", None, [], id="other-name-without-major-minor"),
        pytest.param("/dev/nvme9n1", "259:9", [], id="not-mounted"),
    ],
)
def test_mounts_of_device(device, major_minor, expected):
    entries = parse_mountinfo(MOUNTINFO)
    assert [m["mount_point"] for m in mounts_of_device(entries, device, resolve, major_minor)] == expected


def test_mounts_of_device_does_not_resolve_pseudo_sources():
    seen = []

    def recording_resolve(path):
        seen.append(path)
        return path

    mounts_of_device(parse_mountinfo(MOUNTINFO), "/dev/nvme1n1", recording_resolve)
    assert "proc" not in seen and "tmpfs" not in seen
