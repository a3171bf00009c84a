# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""railsdeploy.aws.settings_check: every setting given is one the collection reads, and well formed (on the
controller, no AWS call, no host touched). Documented in plugins/modules/settings_check.py."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from ansible.plugins.action import ActionBase

from ansible_collections.railsdeploy.aws.plugins.filter.unknown_settings import unknown_settings
from ansible_collections.railsdeploy.aws.plugins.plugin_utils._settings import problems

# The collection's roles, whose meta/argument_specs.yml document every setting (this file is plugins/action/).
ROLES = Path(__file__).resolve().parents[2] / "roles"


class Rendered(Mapping):
    """The play's variables, each rendered when a check first reads it: a setting no check reads (a password from
    a lookup) is never rendered."""

    def __init__(self, templar, variables: Mapping):
        self._templar, self._variables, self._cache = templar, variables, {}

    def __getitem__(self, name: str):
        if name not in self._cache:
            self._cache[name] = self._templar.template(self._variables[name])
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._variables)

    def __len__(self) -> int:
        return len(self._variables)


def given_names(task_vars: Mapping) -> set[str]:
    """What the inventory and the command line set, for every host of the inventory and localhost."""
    hostvars = task_vars["hostvars"]
    names: set[str] = set()
    for host in {*task_vars["groups"]["all"], "localhost"}:
        names.update(hostvars.raw_get(host))
    return names


def unknown_message(unknown: list[dict]) -> str:
    listed = ", ".join(u["name"] + (f" (did you mean {u['suggestion']}?)" if u["suggestion"] else "") for u in unknown)
    return (f"Settings that nothing reads, to fix before anything is changed: {listed}. Correct or remove them; every"
            " setting is documented in ansible-doc -t role railsdeploy.aws.<role> (settings for railsdeploy_*).")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset()

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        result["changed"] = False
        unknown = unknown_settings(given_names(task_vars), ROLES)
        if unknown:
            result.update(failed=True, msg=unknown_message(unknown))
            return result
        found = problems(Rendered(self._templar, task_vars))
        if found:
            result.update(failed=True, msg="Settings to fix before anything is changed: "
                                           + " | ".join(f"{name}: {problem}" for name, problem in found))
        return result
