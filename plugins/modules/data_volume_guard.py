#!/usr/bin/python
# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: data_volume_guard
short_description: Fail unless a path is the mount point of an attached EBS volume
version_added: 0.1.0
description:
  - Guards a directory that must live on a data volume, such as the PostgreSQL data under C(/mnt/ebs-a). When
    the volume is not mounted, a directory of the same name on the root disk looks just the same to Docker and
    to the database, which then run on the wrong disk - silently, until the instance is replaced and the data
    is gone. Run this module before anything creates or uses files under O(path).
  - Succeeds only when O(path) is a mount point, the file system mounted there (the topmost mount, the one
    processes see) is on the block device of O(volume_id) - compared by C(major:minor) device numbers - it is
    the volume's whole file system (not a bind mount of a subdirectory), and, with O(writable), mounted
    read-write. Otherwise it fails with a message naming O(path), what is mounted there (or that nothing is,
    and which disk the directory is really on), where the volume is, and how to fix it.
  - The volume's device is found the same way as M(railsdeploy.aws.ebs_device_info) does - the Nitro udev link
    C(/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol...), else the attachment's O(device_name) (also as
    C(/dev/xvd*)).
  - Runs on the node, does not call AWS, and only reads (C(/proc/self/mountinfo) and device numbers) - never
    changed, and the same in check mode.
extends_documentation_fragment:
  - railsdeploy.aws.ebs_device
  - railsdeploy.aws.attributes
  - railsdeploy.aws.attributes.info_module
  - ansible.builtin.action_common_attributes
options:
  path:
    description:
      - The directory that must be the volume's mount point, for example C(/mnt/ebs-a). Symlinks are resolved.
    type: path
    required: true
  writable:
    description:
      - Also fail when the volume is mounted read-only (for example after the kernel remounted it because of
        file system errors).
    type: bool
    default: true
notes:
  - Needs no root; device numbers and C(/proc/self/mountinfo) are readable by every user.
  - Mounts are those of the module's mount namespace, which on a node is the one Docker uses for bind mounts.
  - The device-number comparison assumes a file system on a single block device (ext4, xfs), as the data
    volume role makes.
seealso:
  - module: railsdeploy.aws.ebs_device_info
  - module: amazon.aws.ec2_vol_info
  - module: ansible.posix.mount
author:
  - railsdeploy.aws developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Data volume is known
  amazon.aws.ec2_vol_info:
    filters:
      "tag:Name": shop-production-postgres2001-data
  delegate_to: localhost
  register: data_volume

- name: /mnt/ebs-a is the mounted data volume (nothing is written there otherwise)
  railsdeploy.aws.data_volume_guard:
    path: /mnt/ebs-a
    volume_id: "{{ data_volume.volumes[0].id }}"
    device_name: "{{ data_volume.volumes[0].attachment_set[0].device }}"

- name: PostgreSQL data directory exists on the data volume
  ansible.builtin.file:
    path: /mnt/ebs-a/postgres/data
    state: directory
    owner: "999"
    group: "999"
    mode: "0700"
  become: true
"""

RETURN = r"""
guarded_path:
  description: O(path) with symlinks resolved.
  returned: always, unless an option is invalid
  type: str
  sample: /mnt/ebs-a
volume_id:
  description: The volume id checked.
  returned: always, unless an option is invalid
  type: str
  sample: vol-0123456789abcdef0
device:
  description: Real path of the volume's block device; null when it was not found on the node.
  returned: always, unless an option is invalid
  type: str
  sample: /dev/nvme1n1
major_minor:
  description: Device numbers of RV(device); null when it was not found.
  returned: always, unless an option is invalid
  type: str
  sample: "259:3"
found_by:
  description: V(by-id) when the device was found through O(by_id_dir), V(device_name) through O(device_name).
  returned: success
  type: str
  sample: by-id
mount:
  description:
    - The mount at O(path) (the topmost, if several are stacked) as C(/proc/self/mountinfo) shows it; null when
      nothing is mounted there.
  returned: always, unless an option is invalid
  type: dict
  contains:
    mount_point:
      description: Where the file system is mounted.
      type: str
      sample: /mnt/ebs-a
    root:
      description: Directory of the file system mounted there; V(/) unless it is a bind mount of a subdirectory.
      type: str
      sample: /
    fstype:
      description: File system type.
      type: str
      sample: ext4
    source:
      description: Mount source as the kernel reports it.
      type: str
      sample: /dev/nvme1n1
    options:
      description: Per-mount options.
      type: str
      sample: rw,noatime
    major_minor:
      description: Device numbers of the mounted file system.
      type: str
      sample: "259:3"
reason:
  description:
    - Why the guard failed - V(volume_not_attached), V(path_missing), V(not_a_mount_point), V(other_device),
      V(subdirectory_mounted), V(mount_hidden), V(read_only) or V(not_a_block_device).
  returned: failure
  type: str
  sample: not_a_mount_point
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.railsdeploy.aws.plugins.module_utils._data_volume_guard import judge
from ansible_collections.railsdeploy.aws.plugins.module_utils._ebs_device import (
    DEVICE_OPTIONS,
    DeviceFinder,
    major_minor,
    parse_mountinfo,
    volume_id_error,
)

MOUNTINFO = "/proc/self/mountinfo"


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            **DEVICE_OPTIONS,
            writable=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    volume_id: str = module.params["volume_id"]
    error = volume_id_error(volume_id)
    if error:
        module.fail_json(msg=error)
    if not os.path.isabs(module.params["path"]):
        module.fail_json(msg=f"path must be absolute, got {module.params['path']!r}")
    path = os.path.realpath(module.params["path"])

    finder = DeviceFinder(volume_id, module.params["device_name"], module.params["by_id_dir"])
    looked_at = finder.looked_at
    found_by, device = finder.find_once() or (None, None)
    device_numbers = None
    if device is not None:
        st = os.stat(device)
        if not stat.S_ISBLK(st.st_mode):
            module.fail_json(
                msg=f"{device} (found for EBS volume {volume_id} through {found_by}) is not a block device; "
                "refusing to guess what is mounted. Check the by-id link and the attachment's device name.",
                guarded_path=path,
                volume_id=volume_id,
                device=device,
                reason="not_a_block_device",
            )
        device_numbers = major_minor(st.st_rdev)

    try:
        with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as handle:
            entries = parse_mountinfo(handle.read())
    except OSError as exc:
        module.fail_json(msg=f"cannot read {MOUNTINFO}: {exc}", guarded_path=path, volume_id=volume_id)
    try:
        path_numbers = major_minor(os.stat(path).st_dev)
    except (FileNotFoundError, NotADirectoryError):
        path_numbers = None
    except OSError as exc:
        module.fail_json(msg=f"cannot read {path}: {exc}. Run the task with become: true.", guarded_path=path)

    verdict = judge(
        path,
        volume_id,
        device,
        device_numbers,
        entries,
        path_numbers,
        writable=module.params["writable"],
        looked_at=looked_at,
    )
    # Not "path": AnsibleModule would add the owner and mode of a returned "path" to the result.
    result = dict(
        guarded_path=path, volume_id=volume_id, device=device, major_minor=device_numbers, mount=verdict.mount
    )
    if not verdict.ok:
        module.fail_json(msg=verdict.msg, reason=verdict.reason, **result)
    module.exit_json(changed=False, found_by=found_by, **result)


if __name__ == "__main__":
    main()
