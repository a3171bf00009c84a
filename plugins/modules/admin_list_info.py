#!/usr/bin/python
# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: admin_list_info
short_description: Check a list of admins and their SSH keys, and the sshd and sudo settings, before any host changes
version_added: 0.1.0
description:
  - Checks the whole admin list of the C(admin_users) role at once and returns every problem, each naming the admin
    and the field - so that an operator fixes C(admins.yml) in one go - and, when there is none, the list with its
    defaults filled in. The role runs it once on the controller, before any host is contacted.
  - SSH public keys are decoded as C(ssh-keygen -l) does - a key type OpenSSH accepts, a body that decodes, the type
    inside it matching the one in front, exactly the fields of that type (an RSA modulus of at least
    O(min_rsa_bits), a 32-byte Ed25519 key, an ECDSA point of its curve's size). A truncated copy-paste, a private
    key, a PuTTY export, a DSA key or a key with C(authorized_keys) options in front is a problem saying what is
    wrong; so are a key shared by two admins, a duplicate, invalid or reserved name, an unknown field or value.
  - The sshd options and sudo C(Defaults) are checked for injection (one directive per key, one line per value; the
    fixed options cannot be overridden).
  - With O(login_keys), the exact keys of Ansible's login user, the public key of every file in O(login_key_files)
    (C(ssh-keygen -y -f)) must be among them - else the run would lock Ansible out.
  - No stock module checks SSH public keys (C(ansible.posix.authorized_key) writes whatever it is given).
  - Only reads; never reports a change.
extends_documentation_fragment:
  - railsdeploy.aws.attributes
  - railsdeploy.aws.attributes.info_module
  - ansible.builtin.action_common_attributes
options:
  admins:
    description:
      - The admins. Each has C(name), C(ssh_keys) (a list, or one key), C(sudo) (V(passwordless), V(password) or
        V(none)), C(state) (V(present) or V(absent)) and C(docker) (a boolean). Not set (null) is a problem, an
        undefined list; V([]) is valid.
    type: raw
  reserved:
    description: Names no admin may have (root, the AMI's login users, system accounts).
    type: list
    elements: str
    default: []
  min_rsa_bits:
    description: The smallest RSA key accepted.
    type: int
    default: 2048
  sshd_options:
    description: More sshd directives (name => value) the role writes to its drop-in.
    type: raw
    default: {}
  fixed_sshd_options:
    description: The sshd directives the role always writes, which O(sshd_options) must not override.
    type: dict
    default: {}
  sudo_defaults:
    description: The sudoers C(Defaults) lines for each admin.
    type: raw
    default: []
  login_keys:
    description: The exact authorized keys of Ansible's login user; empty leaves them alone (nothing to check).
    type: raw
    default: []
  login_key_files:
    description: Host => the private key file Ansible logs in with there (C(ansible_ssh_private_key_file)).
    type: dict
    default: {}
requirements:
  - C(ssh-keygen) on the controller, when O(login_keys) is set
author:
  - railsdeploy.aws developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Admin list and settings are checked on the controller
  railsdeploy.aws.admin_list_info:
    admins: "{{ railsdeploy_admins }}"
    reserved: [root, admin, ubuntu]
  delegate_to: localhost
  run_once: true
  register: checked

- name: Admin list is valid
  ansible.builtin.assert:
    that: checked.problems | length == 0
    fail_msg: "{{ checked.problems }}"
"""

RETURN = r"""
problems:
  description: Every problem found, one message each, naming the admin (or setting) and the field.
  returned: always
  type: list
  elements: str
  sample: ["railsdeploy_admins item 2 (bob): ssh_keys item 1 is not an OpenSSH public key (no base64 body)"]
admins:
  description:
    - The list with defaults filled in (C(ssh_keys) a list, empty for an absent admin; C(docker) true for an admin
      who may sudo). Empty when there are problems.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "alice", "ssh_keys": ["ssh-ed25519 AAAA... alice"], "sudo": "passwordless",
            "state": "present", "docker": true}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.railsdeploy.aws.plugins.module_utils._admin_list import (
    admin_users_normalize,
    admin_users_problems,
    admin_users_settings_problems,
    login_keys_problems,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            admins=dict(type="raw"),
            reserved=dict(type="list", elements="str", default=[]),
            min_rsa_bits=dict(type="int", default=2048),
            sshd_options=dict(type="raw", default={}),
            fixed_sshd_options=dict(type="dict", default={}),
            sudo_defaults=dict(type="raw", default=[]),
            login_keys=dict(type="raw", default=[], no_log=False),
            login_key_files=dict(type="dict", default={}, no_log=False),
        ),
        supports_check_mode=True,
    )
    params = module.params

    def public_key_of(path: str) -> tuple[int, str, str]:
        return module.run_command(["ssh-keygen", "-y", "-f", path])

    problems = (
        admin_users_problems(params["admins"], params["reserved"], params["min_rsa_bits"])
        + admin_users_settings_problems(params["sshd_options"], params["sudo_defaults"], params["fixed_sshd_options"])
        + login_keys_problems(params["login_keys"], params["login_key_files"], public_key_of, params["min_rsa_bits"])
    )
    admins = [] if problems else admin_users_normalize(params["admins"])
    module.exit_json(changed=False, problems=problems, admins=admins)


if __name__ == "__main__":
    main()
