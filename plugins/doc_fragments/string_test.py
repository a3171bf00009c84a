# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """What the documentation of the collection's test plugins shares: each tests a string, by the same authors.

    ``railsdeploy.aws.string_test``: its author and its input (``ecr_registry``, ``image_tag``,
    ``postgres_identifier``).
    """

    DOCUMENTATION = r"""
author: railsdeploy.aws contributors
options:
  _input:
    description: The string.
    type: str
    required: true
"""
