# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A Docker image tag, as Docker's reference grammar allows one - the one definition of it in this collection (the
rails_release and app_workers modules, the image_reference filter and the image_tag test read it).

Private to this collection (leading underscore): no compatibility promise to other collections.
"""

from __future__ import annotations

import re

# Letters, digits, _ . -; at most 128; not starting with . or - (distribution/reference).
TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
TAG = re.compile(TAG_PATTERN)


def is_image_tag(value) -> bool:
    """Whether ``value`` is a string Docker accepts as a tag (``$`` would let a trailing newline through: fullmatch)."""
    return isinstance(value, str) and TAG.fullmatch(value) is not None


def release_errors(value) -> list:
    """What is wrong with ``value``, the option ``release`` of a module (the image tag it runs): a message saying it
    is no image tag, or nothing."""
    if is_image_tag(value):
        return []
    return [f"release {value!r} is not a valid image tag (letters, digits, _ . -; at most 128)"]
