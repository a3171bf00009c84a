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
  - Takes or releases the lock that keeps two deploys from running at once. The lock records its holder - who, from
    which machine, since when, which release, the run id - and a deploy that finds it held is told all of that.
  - O(state=present) takes the lock for O(run_id), or succeeds without change when this run already holds it.
    When another run holds it the module fails at once, naming the holder, the release, and the lock's age,
    and how to release it if that deploy is no longer running.
  - O(state=absent) releases the lock when O(run_id) holds it, or any holder's lock with O(force=true) (the
    documented way to clear a stale lock after an interrupted deploy). Releasing a lock that does not exist
    changes nothing.
  - O(state=query) only reads the lock - its holder and age, or nothing when it is free - and changes nothing.
  - There is no lease and no expiry with either backend - a lock is held until it is released.
  - 'O(backend=directory) (the default): the lock is a directory created with C(mkdir) on the node, which is atomic
    on the node''s file system - of two deploys started at once exactly one creates it. The holder''s record is
    written inside it as C(holder.json). The lock lives and dies with that one node.'
  - 'O(backend=etcd): the lock is the etcd key O(key), taken and released through the v3 JSON gateway of the etcd
    member at O(etcd_url) (C(POST /v3/kv/txn)) - usually the node''s own member of the cluster that Patroni uses.
    Taking it is one transaction that writes the holder''s record only if the key does not exist; releasing it
    deletes the key only if it still holds the record that was read. Because etcd replicates the key to every
    member, the lock survives the loss of any one node.'
  - 'O(backend=auto): etcd when a member at one of O(etcd_url) answers, the directory when every one of them refuses
    the connection (no etcd runs there yet: an environment before its first PostgreSQL deploy of a release with etcd,
    or a replaced node). Any other failure - a timeout, an error answer - fails the task: a lock that may be held in
    etcd is never bypassed.'
  - With O(backend=etcd) (or O(backend=auto) finding etcd) the directory lock O(path) of earlier releases is still
    honoured - if it exists on the node and another run holds it, taking the etcd lock is refused, naming it;
    releasing with O(force=true) (or releasing this run's lock) removes it as well.
    This covers the run that upgrades from the directory backend.
  - Nothing but the Python standard library and ansible-core is needed on the node.
extends_documentation_fragment:
  - railsdeploy.aws.attributes
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    details: Reports whether the lock would be taken or released, and fails as a real run would when another run
      holds it. Nothing is written - no directory, no etcd put or delete.
  diff_mode:
    support: none
options:
  backend:
    description:
      - Where the lock is kept - V(directory) on the node's file system, V(etcd) under O(key) in etcd, or V(auto) -
        etcd when one of O(etcd_url) answers, the directory when all of them refuse the connection.
    type: str
    choices: [auto, directory, etcd]
    default: directory
  path:
    description:
      - The lock directory (the default is the one the C(rails_app) role uses). Its parent is created (mode 0755) when
        missing.
      - With O(backend=etcd), the directory lock of earlier releases, honoured but never created.
    type: path
    default: /var/lib/railsdeploy/locks/deploy_rails
  etcd_url:
    description:
      - With O(backend=etcd) or O(backend=auto), the client URLs of the cluster's members, asked in this order until
        one answers - usually the node's own member first.
    type: list
    elements: str
    default: [http://127.0.0.1:2379]
  key:
    description:
      - With O(backend=etcd), the etcd key that is the lock, for example C(/railsdeploy-locks/<scope>/deploy). Keep it
        outside Patroni's namespace, so that clearing Patroni's state never frees the lock.
    type: str
    default: /railsdeploy-locks/deploy
  state:
    description:
      - V(present) takes the lock, V(absent) releases it, V(query) reads it.
    type: str
    choices: [present, absent, query]
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
      - With O(state=absent), release the lock whoever holds it (with O(backend=etcd), the directory lock O(path)
        as well).
    type: bool
    default: false
  release_hint:
    description:
      - The command to show for releasing a stale lock.
    type: str
    default: ansible-playbook playbooks/unlock.yml
notes:
  - With O(backend=etcd), when no member of O(etcd_url) can be reached or each answers with an error, the task fails
    naming each URL and its error; the lock is not changed.
seealso:
  - module: railsdeploy.aws.rails_release
  - name: etcd v3 gRPC JSON gateway
    description: The HTTP/JSON API that the etcd backend calls.
    link: https://etcd.io/docs/v3.4/dev-guide/api_grpc_gateway/
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

- name: This deploy holds the deploy lock in etcd (honouring an earlier release's lock directory)
  railsdeploy.aws.deploy_lock:
    backend: etcd
    key: /railsdeploy-locks/production/deploy
    path: /var/lib/railsdeploy/locks/deploy_rails
    run_id: "{{ deploy_run_id }}"
    holder: "alice@laptop"
    details:
      release: "42"
  delegate_to: "{{ groups['postgres_primary'][0] }}"
  run_once: true

- name: This deploy releases its etcd lock
  railsdeploy.aws.deploy_lock:
    backend: etcd
    key: /railsdeploy-locks/production/deploy
    path: /var/lib/railsdeploy/locks/deploy_rails
    run_id: "{{ deploy_run_id }}"
    state: absent
  delegate_to: "{{ groups['postgres_primary'][0] }}"
  run_once: true
"""

RETURN = r"""
lock:
  description: The holder's details as stored in the lock (after the call for present, before it for absent).
  returned: when a lock exists or was taken
  type: dict
  sample: {"run_id": "20261125T043000-12345", "holder": "alice@laptop", "since": "2026-11-25T04:30:00Z",
           "since_epoch": 1795667400, "details": {"release": "42"}}
age_seconds:
  description: Age of the lock found (from its C(since_epoch); for a lock directory without one, from its time).
  returned: when a lock exists and its age is known
  type: int
backend:
  description: Where the lock was looked for - V(etcd) or V(directory) (what O(backend=auto) chose).
  returned: always
  type: str
etcd_url:
  description: The member that was used, with O(backend=etcd) or when O(backend=auto) chose etcd.
  returned: when etcd was used
  type: str
legacy_lock:
  description: With O(backend=etcd), the holder's details found in the directory lock O(path) of an earlier release.
  returned: when O(backend=etcd) and that directory exists
  type: dict
"""

import base64
import http.client
import json
import os
import shutil
import time
from urllib.error import HTTPError, URLError

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

HOLDER_FILE = "holder.json"
RELEASE_HINT = "ansible-playbook playbooks/unlock.yml"
ETCD_TIMEOUT = 15  # seconds; etcd itself gives up on a request without quorum after about 7 s


class LostRace(Exception):
    """Another deploy created the lock between this one's look and its create; ``holder`` is its record."""

    def __init__(self, holder):
        super().__init__("lost the race for the lock")
        self.holder = holder


class LockChanged(Exception):
    """The lock changed between its read and its delete; ``holder`` is the record now, None when it is gone."""

    def __init__(self, holder):
        super().__init__("the lock changed while it was released")
        self.holder = holder


class EtcdError(Exception):
    """etcd could not be used; ``refused`` when nothing listens at the URL (the connection was refused)."""

    def __init__(self, message, refused=False):
        super().__init__(message)
        self.refused = refused


def parse_record(data):
    """The holder's record from stored JSON: {} when it is missing or not a JSON object."""
    try:
        record = json.loads(data)
    except (TypeError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


class DirectoryLock:
    """The lock as a directory made with mkdir, its record in holder.json."""

    def __init__(self, path):
        self.path = path
        self.where = path

    def read(self):
        """The holder's record, {} when the lock exists without one, None when there is no lock."""
        if not os.path.isdir(self.path):
            return None
        try:
            with open(os.path.join(self.path, HOLDER_FILE), encoding="utf-8") as handle:
                return parse_record(handle.read())
        except FileNotFoundError:
            return {}

    def mtime(self):
        try:
            return os.stat(self.path).st_mtime
        except OSError:
            return None

    def create(self, record):
        """Takes the lock for ``record``: None when taken, else the holder found. Raises LostRace."""
        current = self.read()
        if current is not None:
            return current
        os.makedirs(os.path.dirname(self.path), mode=0o755, exist_ok=True)
        try:
            os.mkdir(self.path, 0o755)
        except FileExistsError:
            raise LostRace(self.read() or {}) from None
        tmp = os.path.join(self.path, f".{HOLDER_FILE}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2)
        os.replace(tmp, os.path.join(self.path, HOLDER_FILE))
        return None

    def delete(self, force):
        shutil.rmtree(self.path, ignore_errors=True)


def b64(data):
    return base64.b64encode(data).decode("ascii")


class EtcdLock:
    """The lock as an etcd key, through the v3 JSON gateway's /v3/kv/txn (etcd 3.4)."""

    def __init__(self, url, key, timeout=ETCD_TIMEOUT):
        self.url = url.rstrip("/")
        self.key = key
        self.where = f"etcd key {key}"
        self.timeout = timeout
        self._key = b64(key.encode("utf-8"))
        self._seen = None  # the key-value last read: its exact value and mod_revision guard the delete

    def txn(self, compare, success, failure=()):
        """(succeeded, the key-value a range op returned or None)."""
        body = json.dumps({"compare": list(compare), "success": list(success), "failure": list(failure)})
        try:
            response = open_url(f"{self.url}/v3/kv/txn", data=body, method="POST", timeout=self.timeout,
                                headers={"Content-Type": "application/json"}, use_proxy=False,
                                follow_redirects="none")
            answer = json.loads(response.read())
        except HTTPError as err:
            raise EtcdError(f"HTTP {err.code} {err.reason}: {etcd_message(err)}") from None
        except (URLError, OSError, http.client.HTTPException, UrlsConnectionError) as err:
            reason = getattr(err, "reason", None) or err
            raise EtcdError(str(reason) or type(err).__name__,
                            refused=isinstance(reason, ConnectionRefusedError)) from None
        except ValueError as err:
            raise EtcdError(f"not a JSON answer: {err}") from None
        if not isinstance(answer, dict) or "header" not in answer:
            raise EtcdError(f"unexpected answer: {answer!r:.300}")
        kv = None
        for response in answer.get("responses") or []:
            kvs = (response.get("response_range") or {}).get("kvs") or []
            kv = kvs[0] if kvs else kv
        return bool(answer.get("succeeded")), kv

    def _range(self):
        return {"request_range": {"key": self._key}}

    def _found(self, kv):
        """The record in ``kv`` (remembered for the delete), None when the key does not exist."""
        self._seen = kv
        if kv is None:
            return None
        return parse_record(base64.b64decode(kv.get("value", "")))

    def read(self):
        return self._found(self.txn([], [self._range()])[1])

    def mtime(self):
        return None  # etcd keeps no time with a key: the age comes from the record's since_epoch only

    def create(self, record):
        """Takes the lock for ``record`` in one txn: None when taken, else the holder found."""
        value = b64(json.dumps(record, sort_keys=True).encode("utf-8"))
        succeeded, kv = self.txn(
            [{"target": "CREATE", "key": self._key, "result": "EQUAL", "create_revision": "0"}],
            [{"request_put": {"key": self._key, "value": value}}],
            [self._range()])
        return None if succeeded else (self._found(kv) or {})

    def delete(self, force):
        """Deletes the key read last if it is unchanged (same bytes; with force, same mod_revision)."""
        if force:
            guard = {"target": "MOD", "mod_revision": self._seen.get("mod_revision", "0")}
        else:
            guard = {"target": "VALUE", "value": self._seen.get("value", "")}
        succeeded, kv = self.txn([{"key": self._key, "result": "EQUAL", **guard}],
                                 [{"request_delete_range": {"key": self._key}}],
                                 [self._range()])
        if not succeeded:
            raise LockChanged(self._found(kv))


def find_etcd(urls, key):
    """(the EtcdLock of the first member that answers a read, or None when every one refused the connection).
    Raises EtcdError naming each URL when none answered and not all refused."""
    errors = []
    for url in urls:
        lock = EtcdLock(url, key)
        try:
            lock.read()
        except EtcdError as err:
            errors.append((url, err))
            continue
        return lock
    if errors and all(err.refused for dummy, err in errors):
        return None
    raise EtcdError("; ".join(f"{url}: {err}" for url, err in errors) or "no etcd_url given")


def etcd_message(err):
    """The message of an error answer of the gateway ({"error": ..., "message": ..., "code": ...})."""
    try:
        body = err.read()
    except Exception:  # noqa: BLE001 - the status line alone must do
        return "no message"
    answer = parse_record(body)
    return answer.get("message") or answer.get("error") or body.decode("utf-8", "replace")[:300] or "no message"


def lock_age(record, now, mtime=None):
    """Seconds since the lock was taken (its since_epoch, else ``mtime``), None when unknown."""
    since = record.get("since_epoch")
    if not isinstance(since, (int, float)) or isinstance(since, bool):
        since = mtime
    return None if since is None else max(0, int(now - since))


def describe(record, age, where=None):
    since = record.get("since", "an unknown time")
    details = record.get("details") or {}
    extra = "".join(f", {key} {value}" for key, value in sorted(details.items()))
    if age is None:
        ago = "age unknown"
    else:
        minutes, seconds = divmod(int(age), 60)
        ago = f"{minutes} min {seconds} s ago"
    text = f"{record.get('holder', 'an unknown holder')} (run {record.get('run_id', '?')}{extra}) since {since}, {ago}"
    return f"{text} ({where})" if where else text


def facts(record, age):
    return {"lock": record, **({} if age is None else {"age_seconds": age})}


def way_out(hint):
    return f"Wait for it to finish. If it is no longer running (interrupted), release the lock with: {hint}"


def take(module, lock, record, now, **extra):
    """state=present; never returns: exits changed when taken, unchanged when this run holds it, fails when another
    run does. ``extra`` goes into every result."""
    p = module.params
    if module.check_mode:
        current = lock.read()
    else:
        try:
            current = lock.create(record)
        except LostRace as lost:
            module.fail_json(msg=f"Another deploy took the deploy lock just now: "
                                 f"{describe(lost.holder, 0, lock.where)}. {way_out(p['release_hint'])}",
                             **facts(lost.holder, 0), **extra)
    if current is None:
        module.exit_json(changed=True, lock=record, **extra)
    age = lock_age(current, now, lock.mtime())
    if current.get("run_id") == p["run_id"]:
        module.exit_json(changed=False, **facts(current, age), **extra)
    module.fail_json(msg=f"Another deploy holds the deploy lock: {describe(current, age, lock.where)}. "
                     f"{way_out(p['release_hint'])}", **facts(current, age), **extra)


def release(module, lock, now):
    """state=absent: (changed, facts). Fails when another run holds it and force is not set."""
    p = module.params
    current = lock.read()
    if current is None:
        return False, {}
    age = lock_age(current, now, lock.mtime())
    if current.get("run_id") != p["run_id"] and not p["force"]:
        module.fail_json(msg=f"The deploy lock is held by {describe(current, age, lock.where)}, not by this run; "
                             f"release it with: {p['release_hint']}", **facts(current, age))
    if not module.check_mode:
        try:
            lock.delete(p["force"])
        except LockChanged as changed:
            if changed.holder is None:
                return False, {"msg": f"The deploy lock ({lock.where}) was released by someone else meanwhile."}
            new_age = lock_age(changed.holder, now)
            module.fail_json(msg=f"The deploy lock changed while this run released it; nothing was deleted. It is "
                                 f"now held by {describe(changed.holder, new_age, lock.where)}. Run again to "
                                 f"release it.", **facts(changed.holder, new_age))
    return True, facts(current, age)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            backend=dict(type="str", choices=["auto", "directory", "etcd"], default="directory"),
            path=dict(type="path", default="/var/lib/railsdeploy/locks/deploy_rails"),
            etcd_url=dict(type="list", elements="str", default=["http://127.0.0.1:2379"]),
            key=dict(type="str", default="/railsdeploy-locks/deploy", no_log=False),
            state=dict(type="str", choices=["present", "absent", "query"], default="present"),
            run_id=dict(type="str", required=True),
            holder=dict(type="str", default="unknown"),
            details=dict(type="dict", default={}),
            force=dict(type="bool", default=False),
            release_hint=dict(type="str", default=RELEASE_HINT),
        ),
        supports_check_mode=True,
    )
    p = module.params
    now = time.time()
    directory = DirectoryLock(p["path"].rstrip("/") or "/")
    lock = None
    if p["backend"] != "directory":
        try:
            lock = find_etcd(p["etcd_url"], p["key"])
        except EtcdError as err:
            module.fail_json(msg=f"etcd could not be used for the deploy lock (etcd key {p['key']}): {err}. "
                                 f"The lock was not changed.", backend="etcd")
        if lock is None and p["backend"] == "etcd":
            module.fail_json(msg=f"etcd could not be used for the deploy lock (etcd key {p['key']}): every member "
                                 f"refused the connection ({', '.join(p['etcd_url'])}). The lock was not changed.",
                             backend="etcd")
    used = {"backend": "directory"} if lock is None else {"backend": "etcd", "etcd_url": lock.url}
    if p["state"] == "query":
        # In etcd, else the lock directory (with etcd: an earlier release's lock still holds the environment).
        where = lock if lock is not None and lock.read() is not None else directory
        found = where.read()
        found_facts = {} if found is None else facts(found, lock_age(found, now, where.mtime()))
        module.exit_json(changed=False, **used, **found_facts)
    if lock is None:
        if p["state"] == "present":
            take(module, directory, record_for(p, now), now, **used)
        changed, result = release(module, directory, now)
        module.exit_json(changed=changed, **used, **result)

    legacy = directory.read()
    legacy_facts = {} if legacy is None else {"legacy_lock": legacy}
    legacy_ours = legacy is not None and legacy.get("run_id") == p["run_id"]
    try:
        if p["state"] == "present":
            if legacy is not None and not legacy_ours:
                age = lock_age(legacy, now, directory.mtime())
                module.fail_json(msg=f"Another deploy holds the deploy lock: a deploy of an earlier release holds "
                                     f"the lock in {directory.path}: {describe(legacy, age)}. "
                                     f"{way_out(p['release_hint'])}", **facts(legacy, age), **legacy_facts,
                                 **used)
            take(module, lock, record_for(p, now), now, **used)
        changed, result = release(module, lock, now)
    except EtcdError as err:
        module.fail_json(msg=f"etcd at {lock.url} could not be used for the deploy lock ({lock.where}): {err}. "
                             f"The lock was not changed.", **legacy_facts, **used)
    # Releasing also removes the directory lock of an earlier release: this run's, or with force anyone's.
    if legacy is not None and (legacy_ours or p["force"]):
        if not module.check_mode:
            directory.delete(p["force"])
        changed = True
    module.exit_json(changed=changed, **result, **legacy_facts, **used)


def record_for(params, now):
    return {
        "run_id": params["run_id"],
        "holder": params["holder"],
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "since_epoch": int(now),
        "details": params["details"],
    }


if __name__ == "__main__":
    main()
