#!/usr/bin/python
# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ec2_host_keys_info
short_description: Read EC2 instances' SSH host keys from their console output
version_added: 0.1.0
description:
  - Calls EC2 C(GetConsoleOutput) for each instance and returns the SSH host keys that cloud-init printed
    between C(-----BEGIN SSH HOST KEY KEYS-----) and C(-----END SSH HOST KEY KEYS-----) at the instance's first
    boot - a source that does not depend on the network path to the instance, so that the keys can be recorded
    in a C(known_hosts) file before the first SSH connection and every later connection verifies them.
  - EC2 posts the console output shortly after a boot and keeps the most recent 64 KB; cloud-init prints the
    keys once per instance. Read them soon after the instance was launched, and record them.
  - Neither amazon.aws nor community.aws has a module that reads the console output.
  - Only reads; never reports a change.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - railsdeploy.aws.attributes
  - railsdeploy.aws.attributes.info_module
  - ansible.builtin.action_common_attributes
options:
  instance_ids:
    description: The instances whose keys are read.
    type: list
    elements: str
    required: true
  wait_timeout:
    description:
      - Seconds to wait for every instance's keys to appear in its console output (a new instance posts it a
        few minutes after it starts). C(0) reads once.
      - Instances whose keys have not appeared by then are returned in RV(missing); the module does not fail.
    type: int
    default: 0
notes:
  - Needs C(ec2:GetConsoleOutput).
  - Only keys of the types OpenSSH accepts as host keys are returned, each as C(<type> <base64>) without the
    comment; a line whose base64 does not hold a key of its stated type is ignored.
seealso:
  - module: ansible.builtin.known_hosts
  - name: Instance console output
    description: What EC2 keeps of an instance's console, and for how long.
    link: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/troubleshoot-unreachable-instance.html#instance-console-console-output
author:
  - railsdeploy.aws developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: The new nodes' host keys are read from their console output
  railsdeploy.aws.ec2_host_keys_info:
    instance_ids: "{{ new_instances | map(attribute='instance_id') | list }}"
    wait_timeout: 600
  register: host_keys

- name: The host keys are recorded
  ansible.builtin.known_hosts:
    path: "{{ inventory_dir }}/known_hosts"
    name: "{{ item.0.address }}"
    key: "{{ item.0.address }} {{ item.1 }}"
  loop: "{{ nodes | subelements('keys') }}"
"""

RETURN = r"""
host_keys:
  description: The host keys of each instance, by instance id (an empty list for an instance in RV(missing)).
  returned: always
  type: dict
  sample:
    i-0123456789abcdef0:
      - ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEm...
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ9...
missing:
  description: The instances whose console output held no host keys (yet).
  returned: always
  type: list
  elements: str
  sample: [i-0fedcba9876543210]
"""

import base64
import binascii
import re
import struct
import time

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports a missing botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

BEGIN = "-----BEGIN SSH HOST KEY KEYS-----"
END = "-----END SSH HOST KEY KEYS-----"
KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
KEY_RE = re.compile(
    r"(?:^|\s)(" + "|".join(re.escape(t) for t in KEY_TYPES) + r")\s+(AAAA[0-9A-Za-z+/]+={0,2})(?:\s|$)"
)


def _embedded_type(blob: str) -> str | None:
    """The key type an SSH public key blob names in its first field, or None when it is not a key blob."""
    try:
        raw = base64.b64decode(blob, validate=True)
        (length,) = struct.unpack(">I", raw[:4])
        return raw[4:4 + length].decode("ascii") if 0 < length < 64 else None
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        return None


def host_keys(console: str) -> list[str]:
    """The host keys in the last complete key block of a console output, as ``<type> <base64>``, in order.

    The last block is the most recent boot's. Console lines may carry prefixes (a timestamp, ``ec2:``); a line
    whose base64 does not hold a key of the type it states is skipped. Returns [] when there is no block.
    """
    end = console.rfind(END)
    start = console.rfind(BEGIN, 0, end) if end >= 0 else -1
    if start < 0:
        return []
    keys: list[str] = []
    for line in console[start + len(BEGIN):end].splitlines():
        match = KEY_RE.search(line)
        if match and _embedded_type(match.group(2)) == match.group(1):
            key = f"{match.group(1)} {match.group(2)}"
            if key not in keys:
                keys.append(key)
    return keys


def read_keys(client, instance_id: str) -> list[str]:
    response = client.get_console_output(aws_retry=True, InstanceId=instance_id)
    output = response.get("Output") or ""
    # botocore hands over the decoded text; the API's own answer is base64.
    if BEGIN not in output:
        try:
            output = base64.b64decode(output, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            pass
    return host_keys(output)


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            instance_ids=dict(type="list", elements="str", required=True),
            wait_timeout=dict(type="int", default=0),
        ),
        supports_check_mode=True,
    )
    ids = list(dict.fromkeys(module.params["instance_ids"]))
    if module.params["wait_timeout"] < 0:
        module.fail_json(msg=f"wait_timeout must be 0 or more seconds, not {module.params['wait_timeout']}")
    client = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    deadline = time.monotonic() + module.params["wait_timeout"]
    found: dict[str, list[str]] = {i: [] for i in ids}
    while True:
        for instance_id in [i for i in ids if not found[i]]:
            try:
                found[instance_id] = read_keys(client, instance_id)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                module.fail_json_aws(exc, msg=f"Could not read the console output of {instance_id} "
                                              "(needs ec2:GetConsoleOutput)")
        missing = [i for i in ids if not found[i]]
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
    module.exit_json(changed=False, host_keys=found, missing=missing)


if __name__ == "__main__":
    main()
