#!/usr/bin/python
# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_lock
short_description: Take or release a deploy lock that two deploys cannot both hold
version_added: 0.1.0
description:
  - A lock is a directory created with C(mkdir), which is atomic on the node's file system - of two deploys
    started at once exactly one creates it. The holder's details (who, from which machine, since when, which
    release, the run id) are written inside it as C(holder.json).
  - O(state=present) takes the lock for O(run_id), or succeeds without change when this run already holds it.
    When another run holds it the module fails at once, naming the holder, the release, and the lock's age,
    and how to release it if that deploy is no longer running.
  - O(state=absent) releases the lock when O(run_id) holds it, or any holder's lock with O(force=true) (the
    documented way to clear a stale lock after an interrupted deploy). Releasing a lock that does not exist
    changes nothing.
extends_documentation_fragment:
  - railsdeploy.aws.attributes
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports whether the lock would be taken or released, and fails as a real run would when another run
      holds it.
  diff_mode:
    support: none
options:
  path:
    description:
      - The lock directory. Its parent is created (mode 0755) when missing.
    type: path
    default: /var/lib/railsdeploy/locks/deploy
  state:
    description:
      - V(present) takes the lock, V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  run_id:
    description:
      - Identifies this deploy run; the same run may take the lock again without failing.
    type: str
    required: true
  holder:
    description:
      - Who deploys, for example C(alice@laptop).
    type: str
    default: unknown
  details:
    description:
      - Further facts stored with the lock and shown to a deploy that finds it held, such as the release.
    type: dict
    default: {}
  force:
    description:
      - With O(state=absent), release the lock whoever holds it.
    type: bool
    default: false
  release_hint:
    description:
      - The command to show for releasing a stale lock.
    type: str
    default: ansible-playbook playbooks/deploy_rails.yml -e rails_app_unlock=true
seealso:
  - module: railsdeploy.aws.rails_release
author:
  - railsdeploy.aws developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: This deploy holds the deploy lock
  railsdeploy.aws.deploy_lock:
    path: /var/lib/railsdeploy/locks/deploy_rails
    run_id: "{{ deploy_run_id }}"
    holder: "alice@laptop"
    details:
      release: "42"
  become: true
  run_once: true

- name: Stale lock is released (after checking that no deploy runs)
  railsdeploy.aws.deploy_lock:
    path: /var/lib/railsdeploy/locks/deploy_rails
    run_id: manual
    state: absent
    force: true
  become: true
"""

RETURN = r"""
lock:
  description: The holder's details as stored in the lock (after the call for present, before it for absent).
  returned: when a lock exists or was taken
  type: dict
  sample: {"run_id": "20261125T043000-12345", "holder": "alice@laptop", "since": "2026-11-25T04:30:00Z",
           "since_epoch": 1795667400, "details": {"release": "42"}}
age_seconds:
  description: Age of the lock found.
  returned: when a lock exists
  type: int
"""

import json
import os
import shutil
import time

from ansible.module_utils.basic import AnsibleModule

HOLDER_FILE = "holder.json"
RELEASE_HINT = "ansible-playbook playbooks/deploy_rails.yml -e rails_app_unlock=true"


def read_lock(path):
    """The holder's record, {} when the lock exists without one, None when there is no lock."""
    if not os.path.isdir(path):
        return None
    try:
        with open(os.path.join(path, HOLDER_FILE), encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (FileNotFoundError, ValueError):
        return {}


def describe(lock, age, path):
    since = lock.get("since", "an unknown time")
    details = lock.get("details") or {}
    extra = "".join(f", {key} {value}" for key, value in sorted(details.items()))
    minutes, seconds = divmod(int(age), 60)
    return (f"{lock.get('holder', 'an unknown holder')} (run {lock.get('run_id', '?')}{extra}) since {since}, "
            f"{minutes} min {seconds} s ago ({path})")


def lock_age(path, lock, now):
    since = lock.get("since_epoch")
    if isinstance(since, (int, float)):
        return max(0, int(now - since))
    return max(0, int(now - os.stat(path).st_mtime))


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/var/lib/railsdeploy/locks/deploy"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            run_id=dict(type="str", required=True),
            holder=dict(type="str", default="unknown"),
            details=dict(type="dict", default={}),
            force=dict(type="bool", default=False),
            release_hint=dict(type="str", default=RELEASE_HINT),
        ),
        supports_check_mode=True,
    )
    p = module.params
    path = p["path"].rstrip("/") or "/"
    now = time.time()
    lock = read_lock(path)

    if p["state"] == "absent":
        if lock is None:
            module.exit_json(changed=False)
        age = lock_age(path, lock, now)
        if lock.get("run_id") != p["run_id"] and not p["force"]:
            module.fail_json(msg=f"The deploy lock is held by {describe(lock, age, path)}, not by this run; "
                                 f"release it with: {p['release_hint']}", lock=lock, age_seconds=age)
        if not module.check_mode:
            shutil.rmtree(path, ignore_errors=True)
        module.exit_json(changed=True, lock=lock, age_seconds=age)

    if lock is not None:
        age = lock_age(path, lock, now)
        if lock.get("run_id") == p["run_id"]:
            module.exit_json(changed=False, lock=lock, age_seconds=age)
        module.fail_json(
            msg=f"Another deploy holds the deploy lock: {describe(lock, age, path)}. Wait for it to finish. "
                f"If it is no "
                f"longer running (interrupted), release the lock with: {p['release_hint']}",
            lock=lock, age_seconds=age)

    record = {
        "run_id": p["run_id"],
        "holder": p["holder"],
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "since_epoch": int(now),
        "details": p["details"],
    }
    if module.check_mode:
        module.exit_json(changed=True, lock=record)
    parent = os.path.dirname(path)
    os.makedirs(parent, mode=0o755, exist_ok=True)
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        # Another deploy made it between our look and our mkdir: it holds the lock.
        other = read_lock(path) or {}
        module.fail_json(msg=f"Another deploy took the deploy lock just now: {describe(other, 0, path)}.",
                         lock=other, age_seconds=0)
    tmp = os.path.join(path, f".{HOLDER_FILE}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    os.replace(tmp, os.path.join(path, HOLDER_FILE))
    module.exit_json(changed=True, lock=record)


if __name__ == "__main__":
    main()
