# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """The options that name an EBS volume's device on the node, as ``_ebs_device.DEVICE_OPTIONS`` takes them.

    ``railsdeploy.aws.ebs_device``: ``ebs_device_info``, ``data_volume_guard``.
    """

    DOCUMENTATION = r"""
options:
  volume_id:
    description:
      - The EBS volume id, C(vol-) followed by 8 to 17 lower-case hex digits (from M(amazon.aws.ec2_vol_info)).
    type: str
    required: true
  device_name:
    description:
      - The attachment's device name as the EC2 API reports it, for example C(/dev/sdf) or C(/dev/xvdf).
      - Used only when the C(by-id) link of O(volume_id) is not in O(by_id_dir) (Xen instances). A name starting
        with C(sd) is also tried with C(xvd) instead (C(/dev/sdf) then C(/dev/xvdf)). A bare name gets C(/dev/).
    type: str
  by_id_dir:
    description:
      - Directory holding the udev C(by-id) links.
    type: path
    default: /dev/disk/by-id
"""
