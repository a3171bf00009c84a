#!/usr/bin/python
# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: app_workers
short_description: Run the app's background workers (job processes) of one release on a node
version_added: 0.2.0
description:
  - Runs each of O(workers) - a job process such as C(bundle exec sidekiq) or C(bin/jobs) - as a container of the
    app image, C(<name>-worker-<worker name>), with the app's environment and secrets and no published port.
    Docker restarts a worker after a crash and after the node reboots (C(--restart unless-stopped)).
  - A worker whose release or settings differ is stopped gracefully - C(SIGTERM), then up to its C(stop_timeout)
    seconds for the job it runs to finish, then C(SIGKILL) - and removed before its successor starts, so two
    generations never run jobs at once on the node. Every stop comes before every start.
  - Worker containers of this app that O(workers) does not list are stopped the same way and removed
    (O(prune)); so are the ones named in O(absent), first, whatever O(prune) says.
  - A started worker must still run O(start_check_seconds) later, or it is removed and the module fails naming it
    with its last log lines (a missing command, a crash at boot).
  - Nothing changes when every listed worker runs this image with the same settings (a keyed fingerprint of image
    id, release, environment, secrets, command, stop timeout and options, kept in a label).
  - Secrets (O(secret_env)) are never container variables, so C(docker inspect) does not show them; they are
    passed as M(railsdeploy.aws.rails_release) passes them. The image needs C(/bin/sh).
  - Talks to the node's Docker engine through the C(docker) CLI; run it with become.
extends_documentation_fragment:
  - railsdeploy.aws.attributes
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    details: Reports which workers would start and stop; starts, stops and writes nothing.
  diff_mode:
    support: full
    details: Shows each worker container's release before and after.
options:
  name:
    description:
      - The app's container name; the workers are C(<name>-worker-<worker name>).
    type: str
    default: rails
  image:
    description:
      - Image repository without tag. Required when O(workers) is not empty.
    type: str
  release:
    description:
      - The release (image tag) the workers run. The image must be on the node. Required when O(workers) is not
        empty.
    type: str
  workers:
    description:
      - The workers that run on this node. An empty list stops every worker of the app (with O(prune)).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - The worker's name, 1-40 lower-case letters, digits, C(-) or C(_).
        type: str
        required: true
      command:
        description:
          - Its command, replacing the image's C(CMD), for example C([bundle, exec, sidekiq]).
        type: list
        elements: str
        required: true
      stop_timeout:
        description:
          - Seconds between C(SIGTERM) and C(SIGKILL) when it stops (the longest job it must be allowed to finish);
            O(stop_timeout) when not given.
        type: int
  absent:
    description:
      - Names of workers that must not run on this node (a worker that runs on one node only, on the other nodes).
        They are stopped and removed; nothing is started.
    type: list
    elements: str
    default: []
  prune:
    description:
      - Stop and remove this app's worker containers that O(workers) does not list.
    type: bool
    default: true
  env:
    description:
      - Environment variables that are not secret (visible in C(docker inspect)).
    type: dict
    default: {}
  secret_env:
    description:
      - Secret environment variables, such as C(DATABASE_URL). Never logged, never in C(docker inspect).
    type: dict
    default: {}
  run_options:
    description:
      - Further C(docker run) options for every worker container, such as C(--memory=1g).
    type: list
    elements: str
    default: []
  stop_timeout:
    description:
      - Seconds a worker has between C(SIGTERM) and C(SIGKILL) when its own C(stop_timeout) is not given.
    type: int
    default: 30
  start_check_seconds:
    description:
      - Seconds a started worker must keep running for the module to succeed (a missing command or a crash at boot
        ends it within milliseconds).
    type: float
    default: 0.5
  state_dir:
    description:
      - Root-only directory for the secrets files and the fingerprint key (shared with
        M(railsdeploy.aws.rails_release)).
    type: path
    default: /var/lib/railsdeploy/rails_app
notes:
  - Which node runs a worker that must run on one node only (a scheduler) is the caller's choice; the
    C(rails_app) role stops it everywhere else (O(absent)) before it starts on the chosen node.
seealso:
  - module: railsdeploy.aws.rails_release
  - module: railsdeploy.aws.app_command
author:
  - railsdeploy.aws developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Release 42's workers run on this node
  railsdeploy.aws.app_workers:
    image: registry.example.com/shop
    release: "42"
    workers:
      - name: sidekiq
        command: [bundle, exec, sidekiq]
        stop_timeout: 300
    env:
      RAILS_ENV: production
    secret_env:
      DATABASE_URL: "postgres://rails:{{ db_password | urlencode }}@127.0.0.1:5432/rails_production"
      SECRET_KEY_BASE: "{{ secret_key_base }}"
  become: true

- name: The scheduler runs on no other node than the first
  railsdeploy.aws.app_workers:
    absent: [clock]
  become: true
  when: inventory_hostname != groups['rails'] | sort | first
"""

RETURN = r"""
workers:
  description: Worker containers on the node after the module ran, and the release each runs.
  returned: always
  type: dict
  sample: {"rails-worker-sidekiq": "42"}
started:
  description: Worker containers started (in check mode, that would start).
  returned: always
  type: list
  elements: str
  sample: ["rails-worker-sidekiq"]
stopped:
  description: Worker containers stopped and removed, each with its exit code (0 - it ended on SIGTERM, 137 - it
    was killed at its stop timeout) and the seconds the stop took.
  returned: always
  type: list
  elements: dict
  sample: [{"container": "rails-worker-sidekiq", "exit_code": 0, "seconds": 4.2}]
container_logs:
  description: Last log lines of a worker that did not stay up.
  returned: when a worker did not stay up
  type: list
  elements: str
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.railsdeploy.aws.plugins.module_utils._app_container import Docker, DockerError, checked_params
from ansible_collections.railsdeploy.aws.plugins.module_utils._app_workers import (
    WorkerSet,
    WorkersFailed,
    worker_errors,
)
from ansible_collections.railsdeploy.aws.plugins.module_utils._image_tag import release_errors


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", default="rails"),
            image=dict(type="str"),
            release=dict(type="str"),
            workers=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                command=dict(type="list", elements="str", required=True),
                stop_timeout=dict(type="int"),
            )),
            absent=dict(type="list", elements="str", default=[]),
            prune=dict(type="bool", default=True),
            env=dict(type="dict", default={}),
            secret_env=dict(type="dict", default={}, no_log=True),
            run_options=dict(type="list", elements="str", default=[]),
            stop_timeout=dict(type="int", default=30),
            start_check_seconds=dict(type="float", default=0.5),
            state_dir=dict(type="path", default="/var/lib/railsdeploy/rails_app"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    errors = worker_errors(p["workers"], p["stop_timeout"])
    if p["workers"]:
        if not p["image"]:
            errors.append("image is required when workers are given")
        errors += release_errors(p["release"])
    both = sorted(set(p["absent"]) & {w["name"] for w in p["workers"]})
    if both:
        errors.append(f"workers {both} are both listed and absent")
    if p["stop_timeout"] < 1:
        errors.append("stop_timeout must be at least 1 second")
    if p["start_check_seconds"] < 0:
        errors.append("start_check_seconds must not be negative")
    p = checked_params(module, errors)

    docker_bin = module.get_bin_path("docker", required=True)
    workers = WorkerSet(p, Docker(module.run_command, docker_bin))
    try:
        result = workers.run(check_mode=module.check_mode)
    except WorkersFailed as exc:
        module.fail_json(msg=str(exc), **exc.details)
    except DockerError as exc:
        module.fail_json(msg=f"Docker failed on the node: {exc}")
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
