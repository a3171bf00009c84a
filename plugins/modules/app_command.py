#!/usr/bin/python
# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: app_command
short_description: Run a one-off command in a container of the app image, secrets kept out of docker inspect
version_added: 0.1.0
description:
  - Runs a command such as C(bin/rails db:migrate) or C(bin/rails db:prepare db:seed) in a new container of
    the app image on the node, waits for it to end, removes it, and returns its exit code and output.
  - Secrets (O(secret_env)) reach the command as environment variables exported from a file in a root-only
    directory on the node, mounted read-only into the container, the same way M(railsdeploy.aws.rails_release)
    passes them. C(docker inspect) of the running container shows only the file's path. The file is deleted
    afterwards. The image needs C(/bin/sh).
  - Always reports changed when it ran (the command's effect is the command's business); use C(changed_when)
    for better. In check mode it does not run and reports changed.
extends_documentation_fragment:
  - railsdeploy.aws.attributes
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    details: Nothing runs; the result says the command would run.
  diff_mode:
    support: none
options:
  image:
    description:
      - Image reference with tag, for example C(registry.example.com/shop:42).
      - Required unless O(like) is given.
    type: str
  like:
    description:
      - Name of a running app container, such as the release a node serves. The command runs in a fresh container
        of the very image that container runs, with its environment and its secrets - its secrets file, mounted
        read-only as it is, neither copied nor deleted - as C(kamal app exec) does.
      - Mutually exclusive with O(image), O(env) and O(secret_env); O(pull) does not apply (the image is on the node).
    type: str
  command:
    description:
      - The command, as a list, replacing the image's C(CMD) (the image's entrypoint still runs).
    type: list
    elements: str
    required: true
  name:
    description:
      - Container name prefix; a timestamp and the process id are appended.
    type: str
    default: app-task
  pull:
    description:
      - Pull the image when it is not on the node.
    type: bool
    default: true
  env:
    description:
      - Environment variables that are not secret.
    type: dict
    default: {}
  secret_env:
    description:
      - Secret environment variables; never logged, never in C(docker inspect).
    type: dict
    default: {}
  run_options:
    description:
      - Further C(docker run) options.
    type: list
    elements: str
    default: []
  timeout:
    description:
      - Seconds the command may run; then its container is removed and the module fails.
    type: int
    default: 1800
  state_dir:
    description:
      - Root-only directory where the secrets file is written while the command runs.
    type: path
    default: /var/lib/railsdeploy/rails_app
  fail_on_error:
    description:
      - Fail when the command exits non-zero. With V(false) the exit code is returned for the caller to judge.
    type: bool
    default: true
seealso:
  - module: railsdeploy.aws.rails_release
author:
  - railsdeploy.aws developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: A one-off command runs like the serving release
  railsdeploy.aws.app_command:
    like: rails-blue
    command: [sh, -c, 'bin/rails runner "puts User.count"']
    fail_on_error: false
  become: true
  register: one_off

- name: Migrations run once with the new image
  railsdeploy.aws.app_command:
    image: registry.example.com/shop:42
    command: [bin/rails, db:migrate]
    env:
      RAILS_ENV: production
    secret_env:
      DATABASE_URL: "{{ database_url }}"
      SECRET_KEY_BASE: "{{ secret_key_base }}"
  become: true
  run_once: true
"""

RETURN = r"""
rc:
  description: Exit code of the command.
  returned: when it ran
  type: int
  sample: 0
stdout:
  description: Standard output of the command.
  returned: when it ran
  type: str
stderr:
  description: Standard error of the command.
  returned: when it ran
  type: str
stdout_lines:
  description: RV(stdout) split into lines.
  returned: when it ran
  type: list
  elements: str
container:
  description: Name of the one-off container (already removed).
  returned: always
  type: str
  sample: app-task-20261125T043000-4242
"""

import os
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.railsdeploy.aws.plugins.module_utils._app_container import (
    SECRETS_TARGET,
    Docker,
    DockerError,
    checked_params,
    remove_secrets,
    run_args,
    write_secrets,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type="str"),
            like=dict(type="str"),
            command=dict(type="list", elements="str", required=True),
            name=dict(type="str", default="app-task"),
            pull=dict(type="bool", default=True),
            env=dict(type="dict", default={}),
            secret_env=dict(type="dict", default={}, no_log=True),
            run_options=dict(type="list", elements="str", default=[]),
            timeout=dict(type="int", default=1800),
            state_dir=dict(type="path", default="/var/lib/railsdeploy/rails_app"),
            fail_on_error=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
        required_one_of=[("image", "like")],
        mutually_exclusive=[("like", "image"), ("like", "env"), ("like", "secret_env")],
    )
    p = module.params
    errors = []
    if not p["command"]:
        errors.append("command must not be empty")
    if p["timeout"] < 1:
        errors.append("timeout must be at least 1 second")
    p = checked_params(module, errors)
    container = f"{p['name']}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    if module.check_mode:
        module.exit_json(changed=True, container=container)

    docker_bin = module.get_bin_path("docker", required=True)
    docker = Docker(module.run_command, docker_bin)
    own_secrets = not p["like"]
    try:
        if p["like"]:
            image_ref, image, env, secrets_file = like(docker, p["like"])
        else:
            image_ref, env = p["image"], p["env"]
            image = docker.image(image_ref)
            if image is None:
                if not p["pull"]:
                    module.fail_json(msg=f"Image {image_ref} is not on the node and pull is false.",
                                     container=container)
                docker.call("pull", "--quiet", image_ref)
                image = docker.image(image_ref)
            secrets_file = write_secrets(p["state_dir"], container, p["secret_env"])
        args = run_args(
            name=container, image_ref=image_ref, image_info=image, env=env,
            secrets_file=secrets_file, command=p["command"], detach=False, remove=True, extra=p["run_options"],
        )
        rc, out, err = _run_with_timeout(module, docker, [docker_bin, *args], container, p["timeout"])
    except DockerError as exc:
        module.fail_json(msg=str(exc), container=container)
    finally:
        if own_secrets:
            remove_secrets(p["state_dir"], container)
    result = dict(changed=True, rc=rc, stdout=out, stderr=err, stdout_lines=out.splitlines(), container=container)
    if rc != 0 and p["fail_on_error"]:
        tail = " | ".join((err or out).strip().splitlines()[-5:])
        module.fail_json(msg=f"`{' '.join(p['command'])}` in {image_ref} exited {rc}: {tail}", **result)
    module.exit_json(**result)


def like(docker, name):
    """(image reference, image inspect, environment, secrets file) of the running app container ``name``.

    The image is the one the container runs (by id: a tag moved since does not matter); the environment its
    variables (those of the image too, which repeat harmlessly); the secrets file the one mounted at
    SECRETS_TARGET. Raises DockerError when there is no such running container or it has no secrets file.
    """
    info = docker.container(name)
    if info is None or not (info.get("State") or {}).get("Running"):
        raise DockerError(f"No running container {name} on the node: it serves no release to run the command like.")
    mounts = [m for m in info.get("Mounts") or [] if m.get("Destination") == SECRETS_TARGET]
    if not mounts:
        raise DockerError(f"Container {name} has no secrets file at {SECRETS_TARGET}: it was not started by this "
                          "collection.")
    image = docker.image(info["Image"])
    if image is None:
        raise DockerError(f"The image of {name} ({info['Image'][:19]}) is gone from the node.")
    env = dict(item.split("=", 1) for item in (info.get("Config") or {}).get("Env") or [] if "=" in item)
    return info["Image"], image, env, mounts[0]["Source"]


def _run_with_timeout(module, docker, argv, container, timeout):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        docker.remove(container)
        module.fail_json(msg=f"The command ran longer than {timeout} s; its container {container} was removed.",
                         container=container)
    return proc.returncode, proc.stdout, proc.stderr


if __name__ == "__main__":
    main()
