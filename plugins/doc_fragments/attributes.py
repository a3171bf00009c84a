# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Attributes the collection's modules share, as community.docker's ``attributes`` fragment does.

    ``railsdeploy.aws.attributes``: every module - it runs on any POSIX host and supports check mode fully (a
    module's own ``check_mode`` adds what a check-mode run does, as ``details``; use it with
    ``ansible.builtin.action_common_attributes``, which describes the attributes).
    ``railsdeploy.aws.attributes.info_module``: a module that only reads.
    """

    DOCUMENTATION = r"""
options: {}
attributes:
  platform:
    support: full
    platforms: posix
  check_mode:
    support: full
"""

    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    details: The module only reads.
  diff_mode:
    support: N/A
"""
