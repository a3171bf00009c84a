# Copyright: railsdeploy.aws contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a string is a Docker image tag."""

from __future__ import annotations

from ansible_collections.railsdeploy.aws.plugins.module_utils._image_tag import is_image_tag

DOCUMENTATION = r"""
name: image_tag
version_added: 0.1.0
short_description: Whether a string is a Docker image tag
description:
  - True for a tag Docker accepts - letters, digits, V(_), V(.) and V(-), at most 128, not starting with V(.) or V(-) -
    the releases of C(rails_app_release), checked before any change (C(deploy_rails.yml), C(build.yml), C(site.yml)).
extends_documentation_fragment:
  - railsdeploy.aws.string_test
"""

EXAMPLES = r"""
- name: The release is an image tag
  ansible.builtin.assert:
    that: rails_app_release | string is railsdeploy.aws.image_tag
"""

RETURN = r"""
_value:
  description: Whether the input is a Docker image tag.
  type: bool
"""


def image_tag(value) -> bool:
    return is_image_tag(value)


class TestModule:
    def tests(self):
        return {"image_tag": image_tag}
