#!/usr/bin/python
# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ebs_device_info
short_description: Find the block device of an attached EBS volume on the node
version_added: 0.1.0
description:
  - Resolves an EBS volume id to the block device that carries it on the managed node, and reports the
    filesystem on it (type, UUID, label), its size and where it is mounted.
  - On Nitro instances every EBS volume appears as C(/dev/nvmeXn1) whatever device name the attachment asked
    for, and the numbering can change between boots. The stable name is the udev link
    C(/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol<volume id without the dash>), which this module
    looks for first.
  - On Xen instances (and when the udev link is missing) the attachment's O(device_name) is tried instead,
    also in its C(/dev/xvd*) spelling, since Xen kernels show C(/dev/sdf) as C(/dev/xvdf).
  - Runs on the node and does not call AWS. Use M(amazon.aws.ec2_vol_info) or M(amazon.aws.ec2_vol) to learn
    the volume id and the attachment's device name.
  - Only reads; never changes anything.
extends_documentation_fragment:
  - railsdeploy.aws.ebs_device
  - railsdeploy.aws.attributes
  - railsdeploy.aws.attributes.info_module
  - ansible.builtin.action_common_attributes
options:
  wait_timeout:
    description:
      - Seconds to wait for the device to appear. An attachment that the EC2 API reports as C(attached) can
        take several more seconds to show up on the node.
      - V(0) looks once and fails at once when nothing is found.
    type: int
    default: 0
notes:
  - The filesystem is read with C(blkid -p), which needs read access to the device (usually root, so use
    C(become)).
  - The size comes from C(/sys/class/block/<name>/size), or from C(blockdev --getsize64) where sysfs has no entry.
  - Mounts are read from C(/proc/self/mountinfo), the mount namespace of the module's process.
  - Partitions are not followed; the module reports on the whole disk.
seealso:
  - module: amazon.aws.ec2_vol
  - module: amazon.aws.ec2_vol_info
  - module: community.general.filesystem
  - module: ansible.posix.mount
author:
  - railsdeploy.aws developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Data volume's device is known
  railsdeploy.aws.ebs_device_info:
    volume_id: vol-0123456789abcdef0
  become: true
  register: data_volume

- name: Data volume's device is known, waiting for a fresh attachment to appear
  railsdeploy.aws.ebs_device_info:
    volume_id: "{{ attached.volume.id }}"
    device_name: "{{ attached.volume.attachment_set[0].device }}"
    wait_timeout: 120
  become: true
  register: data_volume

- name: Data volume holds an ext4 filesystem (only made when the device is blank)
  community.general.filesystem:
    dev: "{{ data_volume.device }}"
    fstype: ext4
  become: true
  when: data_volume.fstype == '' and data_volume.pttype == ''

- name: Data volume is mounted at /mnt/ebs-a
  ansible.posix.mount:
    path: /mnt/ebs-a
    src: "UUID={{ data_volume.uuid }}"
    fstype: ext4
    opts: defaults,nofail
    state: mounted
  become: true
  when: data_volume.uuid != ''
"""

RETURN = r"""
device:
  description: Real path of the block device, symlinks resolved.
  returned: success
  type: str
  sample: /dev/nvme1n1
by_id_path:
  description:
    - The udev C(by-id) link for the volume, whether or not it exists.
  returned: success
  type: str
  sample: /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0
found_by:
  description:
    - V(by-id) when the device was found through O(by_id_dir), V(device_name) when through O(device_name).
  returned: success
  type: str
  sample: by-id
fstype:
  description: Filesystem type on the device as C(blkid) reports it; empty when the device holds no filesystem.
  returned: success
  type: str
  sample: ext4
uuid:
  description: Filesystem UUID; empty when there is none.
  returned: success
  type: str
  sample: 3e6be9de-8139-11d1-9106-a43f08d823a6
label:
  description: Filesystem label; empty when there is none.
  returned: success
  type: str
  sample: pgdata
pttype:
  description:
    - Partition table type (for example V(gpt) or V(dos)) when the whole disk holds one; empty otherwise.
    - A device with an empty RV(fstype) but a partition table is not blank.
  returned: success
  type: str
  sample: ""
size_bytes:
  description: Size of the device in bytes; null when it could not be read (a warning says why).
  returned: success
  type: int
  sample: 21474836480
mountpoints:
  description:
    - Mount points of the device in the module's mount namespace, in mount order.
    - Includes bind mounts of directories on the device; RV(mounts) tells them apart.
  returned: success
  type: list
  elements: str
  sample: [/mnt/ebs-a]
mounts:
  description: The C(/proc/self/mountinfo) entries behind RV(mountpoints).
  returned: success
  type: list
  elements: dict
  contains:
    mount_point:
      description: Where the filesystem is mounted.
      type: str
      sample: /mnt/ebs-a
    root:
      description: Directory of the filesystem mounted there; V(/) unless it is a bind mount of a subdirectory.
      type: str
      sample: /
    fstype:
      description: Filesystem type of the mount.
      type: str
      sample: ext4
    source:
      description: Mount source as the kernel reports it.
      type: str
      sample: /dev/nvme1n1
    options:
      description: Per-mount options.
      type: str
      sample: rw,relatime
  sample:
    - mount_point: /mnt/ebs-a
      root: /
      fstype: ext4
      source: /dev/nvme1n1
      options: rw,relatime
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.railsdeploy.aws.plugins.module_utils._ebs_device import (
    DEVICE_OPTIONS,
    DeviceFinder,
    major_minor,
    mounts_of_device,
    parse_blkid_export,
    parse_mountinfo,
    volume_id_error,
)

MOUNTINFO = "/proc/self/mountinfo"
SYS_CLASS_BLOCK = "/sys/class/block"


def read_filesystem(module: AnsibleModule, device: str) -> dict[str, str]:
    blkid = module.get_bin_path("blkid", required=True)
    rc, out, err = module.run_command([blkid, "-p", "-o", "export", device])
    if rc == 2:  # blkid: nothing identified on the device
        return {}
    if rc != 0:
        module.fail_json(
            msg=f"blkid could not read {device} (rc={rc}): {err.strip() or out.strip()}. "
            "Reading a block device usually needs root: run the task with become: true.",
            device=device,
        )
    return parse_blkid_export(out)


def read_size(module: AnsibleModule, device: str) -> int | None:
    sys_size = os.path.join(SYS_CLASS_BLOCK, os.path.basename(device), "size")
    try:
        with open(sys_size, encoding="ascii") as handle:
            return int(handle.read().strip()) * 512  # sysfs counts 512-byte sectors whatever the block size
    except (OSError, ValueError):
        pass
    blockdev = module.get_bin_path("blockdev")
    if blockdev is None:
        module.warn(f"size_bytes of {device} is unknown: {sys_size} is not readable and blockdev is not installed")
        return None
    rc, out, err = module.run_command([blockdev, "--getsize64", device])
    try:
        if rc == 0:
            return int(out.strip())
    except ValueError:
        pass
    module.warn(
        f"size_bytes of {device} is unknown: blockdev --getsize64 failed (rc={rc}): {err.strip() or out.strip()}"
    )
    return None


def read_mounts(device: str) -> list[dict[str, str]]:
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as handle:
            entries = parse_mountinfo(handle.read())
    except OSError:
        return []
    numbers = None
    try:
        st = os.stat(device)
        if stat.S_ISBLK(st.st_mode):
            numbers = major_minor(st.st_rdev)
    except OSError:
        pass
    return mounts_of_device(entries, device, os.path.realpath, numbers)


def not_found_message(volume_id: str, finder: DeviceFinder, device_name: str | None, wait_timeout: int) -> str:
    waited = f" after waiting {wait_timeout}s" if wait_timeout > 0 else ""
    hint = "" if device_name else " Pass device_name (the attachment's device, e.g. /dev/sdf) for Xen instances."
    return (
        f"EBS volume {volume_id} was not found on this node{waited}; looked at: {', '.join(finder.looked_at)}. "
        f"Check that the volume is attached to this instance (amazon.aws.ec2_vol_info: attachment_set, "
        f"status 'in-use'), that udev created the by-id link, or raise wait_timeout for a fresh attachment.{hint}"
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            **DEVICE_OPTIONS,
            wait_timeout=dict(type="int", default=0),
        ),
        supports_check_mode=True,
    )
    volume_id: str = module.params["volume_id"]
    device_name: str | None = module.params["device_name"]
    wait_timeout: int = module.params["wait_timeout"]

    error = volume_id_error(volume_id)
    if error:
        module.fail_json(msg=error)
    if wait_timeout < 0:
        module.fail_json(msg=f"wait_timeout must be 0 or more seconds, got {wait_timeout}")

    finder = DeviceFinder(volume_id, device_name, module.params["by_id_dir"])
    found = finder.find(wait_timeout)
    if found is None:
        module.fail_json(
            msg=not_found_message(volume_id, finder, device_name, wait_timeout),
            volume_id=volume_id,
            looked_at=finder.looked_at,
        )
    found_by, device = found

    filesystem = read_filesystem(module, device)
    mounts = read_mounts(device)
    module.exit_json(
        changed=False,
        device=device,
        by_id_path=finder.by_id_path,
        found_by=found_by,
        fstype=filesystem.get("TYPE", ""),
        uuid=filesystem.get("UUID", ""),
        label=filesystem.get("LABEL", ""),
        pttype=filesystem.get("PTTYPE", ""),
        size_bytes=read_size(module, device),
        mountpoints=[entry["mount_point"] for entry in mounts],
        mounts=[
            {key: entry[key] for key in ("mount_point", "root", "fstype", "source", "options")} for entry in mounts
        ],
    )


if __name__ == "__main__":
    main()
