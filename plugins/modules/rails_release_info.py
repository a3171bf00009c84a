#!/usr/bin/python
# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rails_release_info
short_description: The release a node serves and the releases it deployed before, as rails_release recorded them
version_added: 0.1.0
description:
  - Reads the release history M(railsdeploy.aws.rails_release) keeps on the node (C(releases.json) in O(state_dir),
    newest first) and returns it, with the release that serves now - its image, the repository it came from, the
    image id and when it was deployed.
  - The deploy's V(current) entry point (C(rails_app_keep_current)) keeps each node's serving release from its own
    repository with it; C(playbooks/status.yml) shows it.
  - Only reads; never reports a change. A node that never deployed has no serving release (RV(serving) is empty).
  - The state directory is root-only, so run it with become.
extends_documentation_fragment:
  - railsdeploy.aws.attributes
  - railsdeploy.aws.attributes.info_module
  - ansible.builtin.action_common_attributes
options:
  state_dir:
    description:
      - The state directory of M(railsdeploy.aws.rails_release) (its
        C(state_dir)).
    type: path
    default: /var/lib/railsdeploy/rails_app
author:
  - railsdeploy.aws developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: The release this node serves is known
  railsdeploy.aws.rails_release_info:
  become: true
  register: deployed

- name: It is shown
  ansible.builtin.debug:
    msg: "{{ deployed.serving.release | default('none') }} from {{ deployed.serving.repository | default('-') }}"
"""

RETURN = r"""
serving:
  description: The release the node serves (the newest entry of the history); empty when the node never deployed.
  returned: always
  type: dict
  contains:
    release:
      description: The release (the image's tag).
      type: str
      sample: "2024-06-01.1"
    image:
      description: The image reference deployed.
      type: str
      sample: registry.example.com/shop:2024-06-01.1
    repository:
      description: The repository the release came from (the image without its tag).
      type: str
      sample: registry.example.com/shop
    image_id:
      description: The image's id when it was deployed.
      type: str
      sample: sha256:8ae9791680eaf60549e8a4803acfac7175d2c4fa690446ed84eeebf3da8fa43c
    deployed_at:
      description: When it was deployed (UTC).
      type: str
      sample: "2026-12-06T10:04:18Z"
history:
  description: Every release the node keeps a record of, newest first (the same fields, without C(repository)).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.railsdeploy.aws.plugins.module_utils._rails_release import read_history, repository_of


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(state_dir=dict(type="path", default="/var/lib/railsdeploy/rails_app")),
        supports_check_mode=True,
    )
    history = read_history(module.params["state_dir"])
    newest = history[0] if history and isinstance(history[0], dict) and history[0].get("release") else None
    serving = dict(newest, repository=repository_of(newest)) if newest else {}
    module.exit_json(changed=False, serving=serving, history=history)


if __name__ == "__main__":
    main()
