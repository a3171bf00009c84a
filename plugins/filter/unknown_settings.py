# Copyright: railsdeploy.aws contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The settings a user gave that no role of the collection reads (a misspelt name does nothing, silently)."""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

# libyaml's loader when PyYAML has it: ten times faster on the roles' specs, read in every playbook run.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

DOCUMENTATION = r"""
name: unknown_settings
author: railsdeploy.aws contributors
version_added: 0.1.0
short_description: The given variable names that look like settings of the collection but are none
description:
  - From a list of variable names (what the inventory and the command line set), returns those that begin with a
    settings prefix (V(railsdeploy_), or a role's name and V(_)) but are not a known setting, each with the closest
    known setting when one is close enough to be a misspelling.
  - The known settings are the options of every entry point in the C(meta/argument_specs.yml) of every role under
    O(roles_dir); the prefixes are V(railsdeploy_), shared by all, and those roles' names.
  - Names starting with V(__) are the roles' internal variables and are never reported.
  - The action C(railsdeploy.aws.settings_check), which the C(railsdeploy.aws.settings) role runs once per playbook
    run, calls the same function on every host's variables before any change, so that a typo such as
    V(railsdeploy_lb_certficate_arn) stops the run instead of leaving a default in place.
options:
  _input:
    description: Variable names to check.
    type: list
    elements: str
    required: true
  roles_dir:
    description: The collection's C(roles) directory (C(role_path | dirname) in a role of the collection).
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Settings nobody reads are reported
  ansible.builtin.debug:
    msg: "{{ ['railsdeploy_lb_certficate_arn', 'ansible_host'] | railsdeploy.aws.unknown_settings(roles) }}"
  vars:
    roles: "{{ role_path | dirname }}"  # in a role of this collection
# => [{"name": "railsdeploy_lb_certficate_arn", "suggestion": "railsdeploy_lb_certificate_arn"}]
"""

RETURN = r"""
_value:
  description: The unknown settings, sorted by name.
  type: list
  elements: dict
  contains:
    name:
      description: The variable's name.
      type: str
    suggestion:
      description: >-
        The closest known setting of the same prefix, else of any prefix (a setting that moved to another role),
        or an empty string when none is close.
      type: str
"""


# The prefix of the settings every role shares (the inventory's railsdeploy_*, documented by the settings role).
SHARED_PREFIX = "railsdeploy_"


def known_settings(roles_dir):
    """(every option of every entry point of every role's argument specs, the prefixes: the shared one and the
    roles')."""
    known, prefixes = set(), [SHARED_PREFIX]
    for spec in sorted(Path(roles_dir).glob("*/meta/argument_specs.yml")):
        prefixes.append(spec.parents[1].name + "_")
        for entry_point in (yaml.load(spec.read_text(), Loader=_LOADER) or {}).get("argument_specs", {}).values():
            known.update((entry_point or {}).get("options") or {})
    return known, prefixes


def find_unknown(names, known, prefixes):
    known_set = set(known)
    found = []
    for name in sorted(set(names)):
        if name.startswith("__") or name in known_set:
            continue
        prefix = max((p for p in prefixes if name.startswith(p)), key=len, default=None)
        if prefix is None:
            continue
        same_prefix = sorted(k for k in known_set if k.startswith(prefix))
        # Else the closest of any prefix: a setting that moved to another role (docker_host_gc_* -> docker_gc_*).
        close = (difflib.get_close_matches(name, same_prefix, n=1, cutoff=0.8)
                 or difflib.get_close_matches(name, sorted(known_set), n=1, cutoff=0.8))
        found.append({"name": name, "suggestion": close[0] if close else ""})
    return found


def unknown_settings(names, roles_dir):
    known, prefixes = known_settings(roles_dir)
    if prefixes == [SHARED_PREFIX]:
        raise ValueError(f"no role with meta/argument_specs.yml under {roles_dir}")
    return find_unknown(names, known, prefixes)


class FilterModule:
    def filters(self):
        return {"unknown_settings": unknown_settings}
