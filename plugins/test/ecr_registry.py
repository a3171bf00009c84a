# Copyright: railsdeploy.aws contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a string is an ECR registry host."""

from __future__ import annotations

from ansible_collections.railsdeploy.aws.plugins.plugin_utils._registry import ECR_REGISTRY

DOCUMENTATION = r"""
name: ecr_registry
version_added: 0.1.0
short_description: Whether a string is an ECR registry host
description:
  - True for an ECR registry host, C(<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]) - no scheme, no path,
    no port - the host the filter P(railsdeploy.aws.image_reference#filter) reads as ECR.
extends_documentation_fragment:
  - railsdeploy.aws.string_test
"""

EXAMPLES = r"""
- name: Every listed registry is ECR
  ansible.builtin.assert:
    that: registries | reject('railsdeploy.aws.ecr_registry') | list | length == 0
"""

RETURN = r"""
_value:
  description: Whether the input is an ECR registry host.
  type: bool
"""


def ecr_registry(value) -> bool:
    return isinstance(value, str) and ECR_REGISTRY.match(value) is not None


class TestModule:
    def tests(self):
        return {"ecr_registry": ecr_registry}
