#!/usr/bin/python
# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rails_release
short_description: Switch a node to a release of the app without dropping a request (blue/green)
version_added: 0.1.0
description:
  - Runs one release of the app on a node behind the node's proxy (haproxy) and replaces the running
    release without downtime. Two slots, C(blue) and C(green), each a container publishing the app on
    its own loopback port (O(base_port) and O(base_port) + 1). The proxy's backend file
    (O(proxy_backend_file)) names the slot that serves.
  - "A deploy: the new release starts in the idle slot beside the old one; its health check
    (C(GET http://127.0.0.1:<slot port>)O(health_path)) must answer 200 within O(health_timeout) seconds;
    the backend file is rewritten and the proxy reloaded gracefully (C(SIGUSR2): old workers finish their
    requests); the module waits until the proxy answers from the new slot, then until the proxy's old worker
    process has exited - every request it held has finished (haproxy in master-worker mode, as the official
    image runs it) - for at most O(drain_seconds), and only then stops the old container (C(SIGTERM), up to
    O(stop_timeout) seconds)."
  - When the new release fails its health check, or the proxy does not switch, the new container is removed,
    the backend file restored and the old release keeps serving; the module fails with a message naming the
    node, the check and the container's last log lines.
  - Nothing changes when the serving container already runs this image with the same settings (compared by
    a keyed fingerprint of image id, release, environment, secrets, command and options, kept in a label).
  - Secrets (O(secret_env)) are never passed as container variables, so C(docker inspect) does not show them.
    They are written to a file in a root-only directory on the node, mounted read-only into the container,
    and exported by a C(/bin/sh) wrapper that then runs the image's own entrypoint and command. The image
    needs C(/bin/sh).
  - After each deploy the last O(keep_releases) releases are listed in O(retained_file) (one image reference
    per line), which the daily clean-up of the role C(railsdeploy.aws.docker_gc) keeps, so that deploying a retained
    release again (a rollback) needs no pull. Each deploy, successful or not, appends one JSON line to
    O(audit_log) (time, host, user, from, to, result).
  - Talks to the node's Docker engine through the C(docker) CLI; run it with become.
extends_documentation_fragment:
  - railsdeploy.aws.attributes
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    details: Reports whether the release would change; starts, stops and writes nothing.
  diff_mode:
    support: full
    details: Shows the serving release before and after.
options:
  name:
    description:
      - Base name of the app's containers; the slots are C(<name>-blue) and C(<name>-green).
    type: str
    default: rails
  image:
    description:
      - Image repository without tag, for example C(registry.example.com/shop) or
        C(123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop).
    type: str
    required: true
  release:
    description:
      - The release to run, the image tag (a git sha or a release id).
    type: str
    required: true
  pull:
    description:
      - Pull the image when it is not on the node. With V(false) a missing image fails the deploy before anything
        changes (deploy_rails.yml pulls on every node first, in parallel).
    type: bool
    default: false
  env:
    description:
      - Environment variables that are not secret (visible in C(docker inspect)), such as C(RAILS_ENV) and
        C(ASSET_HOST).
    type: dict
    default: {}
  secret_env:
    description:
      - Secret environment variables, such as C(DATABASE_URL) and C(SECRET_KEY_BASE). Never logged, never in
        C(docker inspect).
    type: dict
    default: {}
  command:
    description:
      - Command replacing the image's C(CMD); by default the image's own.
    type: list
    elements: str
  container_port:
    description:
      - Port the app listens on inside the container.
    type: int
    default: 3000
  base_port:
    description:
      - Loopback port of the C(blue) slot on the node; C(green) uses the next one.
    type: int
    default: 3001
  run_options:
    description:
      - Further C(docker run) options for the app container, such as C(--memory=1g).
    type: list
    elements: str
    default: []
  labels:
    description:
      - Extra labels of the app container.
    type: dict
    default: {}
  health_path:
    description:
      - Path of the health check, answered with 200 only when the app and its database work.
    type: str
    default: /up
  health_timeout:
    description:
      - Seconds the new release has to pass its health check.
    type: int
    default: 60
  proxy_container:
    description:
      - Name of the node's proxy container (haproxy in master-worker mode; C(SIGUSR2) reloads it).
    type: str
    default: rails-proxy
  proxy_backend_file:
    description:
      - The proxy's backend file, rewritten on each switch. It defines C(backend app), which the proxy's main
        configuration uses as its default backend.
    type: path
    default: /etc/railsdeploy/proxy/backend.cfg
  proxy_port:
    description:
      - Port the proxy listens on (the load balancer's target port); the switch is confirmed through it.
    type: int
    default: 80
  switch_timeout:
    description:
      - Seconds the proxy has to answer from the new slot after its reload.
    type: int
    default: 20
  drain_seconds:
    description:
      - At most this many seconds between the switch and stopping the old container, for requests in flight.
        The drain ends as soon as the proxy's old worker has exited; a proxy whose workers cannot be watched
        (not in master-worker mode) is given the whole time.
    type: int
    default: 5
  stop_timeout:
    description:
      - Seconds the old container has between C(SIGTERM) and C(SIGKILL).
    type: int
    default: 30
  keep_releases:
    description:
      - How many releases (this one included) stay listed in O(retained_file).
    type: int
    default: 3
  retained_file:
    description:
      - The list of retained images that the daily clean-up keeps.
    type: path
    default: /var/lib/railsdeploy/releases/retained
  state_dir:
    description:
      - Root-only directory for the secrets files, the fingerprint key and C(releases.json) (the retained releases).
    type: path
    default: /var/lib/railsdeploy/rails_app
  audit_log:
    description:
      - File that gets one JSON line per deploy. Empty to disable.
    type: path
    default: /var/log/railsdeploy/deploys.log
  deployed_by:
    description:
      - Who deploys, for the audit log.
    type: str
    default: unknown
notes:
  - The proxy's main configuration and container are not managed here; see the C(rails_app) role.
  - On the first deploy, when the proxy does not run yet, the backend file is written and the proxy's start is
    left to the caller.
seealso:
  - module: railsdeploy.aws.app_command
  - module: railsdeploy.aws.deploy_lock
author:
  - railsdeploy.aws developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Release 42 serves on this node
  railsdeploy.aws.rails_release:
    image: registry.example.com/shop
    release: "42"
    env:
      RAILS_ENV: production
      ASSET_HOST: https://d111111abcdef8.cloudfront.net
      APP_REVISION: "42"
    secret_env:
      DATABASE_URL: "postgres://rails:{{ db_password | urlencode }}@10.0.1.20:5432/rails_production"
      SECRET_KEY_BASE: "{{ secret_key_base }}"
    deployed_by: alice
  become: true
"""

RETURN = r"""
release:
  description: The release the node serves after the module ran.
  returned: always
  type: str
  sample: "42"
previous_release:
  description: The release served before; null on the first deploy.
  returned: always
  type: str
  sample: "41"
image:
  description: The image reference deployed.
  returned: always
  type: str
  sample: registry.example.com/shop:42
slot:
  description: The slot serving now (C(blue) or C(green)).
  returned: always
  type: str
  sample: green
container:
  description: The container serving now.
  returned: always
  type: str
  sample: rails-green
needs_change:
  description: Whether the node did not serve this release with these settings when the module started (also in
    check mode, and unaffected by C(changed_when)).
  returned: always
  type: bool
image_present:
  description: Whether the release's image was on the node when the module started (also in check mode - a deploy's
    plan pulls only where it is not).
  returned: always
  type: bool
pulled:
  description: Whether the image had to be pulled.
  returned: always
  type: bool
proxy_reloaded:
  description: Whether the proxy was reloaded (false when it did not run yet).
  returned: when changed and not in check mode
  type: bool
drain_seconds:
  description: Seconds the old release drained after the switch.
  returned: when an old release was stopped behind a reloaded proxy
  type: float
  sample: 0.2
drained:
  description: What ended the drain - the proxy's old worker exited, O(drain_seconds) was reached, or no worker
    could be watched.
  returned: when an old release was stopped behind a reloaded proxy
  type: str
  sample: the proxy's old worker exited
retained:
  description: The image references listed in O(retained_file), newest first.
  returned: when not in check mode
  type: list
  elements: str
container_logs:
  description: Last log lines of a new container that failed its health check.
  returned: on a failed health check
  type: list
  elements: str
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.railsdeploy.aws.plugins.module_utils._app_container import Docker, DockerError, checked_params
from ansible_collections.railsdeploy.aws.plugins.module_utils._image_tag import release_errors
from ansible_collections.railsdeploy.aws.plugins.module_utils._rails_release import DeployFailed, ReleaseSwap


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", default="rails"),
            image=dict(type="str", required=True),
            release=dict(type="str", required=True),
            pull=dict(type="bool", default=False),
            env=dict(type="dict", default={}),
            secret_env=dict(type="dict", default={}, no_log=True),
            command=dict(type="list", elements="str"),
            container_port=dict(type="int", default=3000),
            base_port=dict(type="int", default=3001),
            run_options=dict(type="list", elements="str", default=[]),
            labels=dict(type="dict", default={}),
            health_path=dict(type="str", default="/up"),
            health_timeout=dict(type="int", default=60),
            proxy_container=dict(type="str", default="rails-proxy"),
            proxy_backend_file=dict(type="path", default="/etc/railsdeploy/proxy/backend.cfg"),
            proxy_port=dict(type="int", default=80),
            switch_timeout=dict(type="int", default=20),
            drain_seconds=dict(type="int", default=5),
            stop_timeout=dict(type="int", default=30),
            keep_releases=dict(type="int", default=3),
            retained_file=dict(type="path", default="/var/lib/railsdeploy/releases/retained"),
            state_dir=dict(type="path", default="/var/lib/railsdeploy/rails_app"),
            audit_log=dict(type="path", default="/var/log/railsdeploy/deploys.log"),
            deployed_by=dict(type="str", default="unknown"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    errors = release_errors(p["release"])
    if not p["health_path"].startswith("/"):
        errors.append(f"health_path {p['health_path']!r} must start with /")
    if not 1 <= p["base_port"] < 65535:
        errors.append(f"base_port {p['base_port']} is not a port")
    if p["keep_releases"] < 1:
        errors.append("keep_releases must be at least 1")
    p = checked_params(module, errors)

    docker_bin = module.get_bin_path("docker", required=True)

    def run(argv):
        return module.run_command(argv)

    swap = ReleaseSwap(p, Docker(run, docker_bin))
    try:
        result = swap.run(check_mode=module.check_mode)
    except DeployFailed as exc:
        module.fail_json(msg=str(exc), release=p["release"], **exc.details)
    except DockerError as exc:
        module.fail_json(msg=f"Docker failed on the node: {exc}", release=p["release"])
    if not module._diff:
        result.pop("diff", None)
    if swap.messages:
        for message in swap.messages:
            module.warn(message)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
