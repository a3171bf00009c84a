# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A node's background workers (app_workers): containers of the app image running a job command, no port.

Each configured worker is one container ``<name>-worker-<worker>`` labelled ``railsdeploy.worker-of=<name>``,
started with ``--restart unless-stopped`` (Docker restarts it after a crash and after the node reboots) and its
own ``--stop-timeout``. A worker whose release or settings changed is stopped - ``SIGTERM``, then up to its stop
timeout for the job it runs to finish - and removed *before* its successor starts, so that two generations never
run jobs at once on a node. Worker containers of this app that are not listed (a worker taken out of the
configuration, a one-node worker that moved to another node) are stopped the same way and removed.

Secrets reach the workers as they reach the web containers (_app_container: a root-only file, mounted read-only,
exported by a ``/bin/sh`` wrapper): never in ``docker inspect``.
"""

from __future__ import annotations

import json
import os
import re
import time

from ansible_collections.railsdeploy.aws.plugins.module_utils._app_container import (
    LABEL_FINGERPRINT,
    LABEL_RELEASE,
    DockerError,
    config_key,
    fingerprint,
    remove_secrets,
    run_args,
    write_secrets,
)

LABEL_WORKER_OF = "railsdeploy.worker-of"
LABEL_WORKER = "railsdeploy.worker"
WORKER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
# A container that is up, or that Docker is bringing up again (its restart policy after a crash).
LIVE_STATES = ("running", "restarting")


class WorkersFailed(Exception):
    """A worker could not be started or did not stay up; the message names it and why."""

    def __init__(self, message, **details):
        super().__init__(message)
        self.details = details


def worker_errors(workers, stop_timeout_default):
    """Problems with the ``workers`` option, as messages (empty when it is valid)."""
    errors = []
    seen = set()
    for index, worker in enumerate(workers):
        name = worker.get("name")
        where = f"workers[{index}]"
        if not isinstance(name, str) or not WORKER_NAME.match(name):
            errors.append(f"{where}.name {name!r} must be 1-40 lower-case letters, digits, - or _ (starting with a "
                          "letter or digit)")
        elif name in seen:
            errors.append(f"{where}.name {name!r} is given twice")
        seen.add(name)
        command = worker.get("command")
        if not command or not isinstance(command, list) or not all(isinstance(a, str) and a for a in command):
            errors.append(f"{where}.command must be a non-empty list of strings, e.g. [bundle, exec, sidekiq]")
        timeout = worker.get("stop_timeout")
        timeout = stop_timeout_default if timeout is None else timeout
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
            errors.append(f"{where}.stop_timeout {timeout!r} must be a whole number of seconds, at least 1")
    return errors


class WorkerSet:
    """One node's workers of one app. ``params`` are the module's options; docker, clock and sleep are injected
    for tests."""

    def __init__(self, params, docker, clock=time.monotonic, sleep=time.sleep):
        self.p = params
        self.docker = docker
        self.clock = clock
        self.sleep = sleep
        self.name = params["name"]
        self.ref = f"{params['image']}:{params['release']}" if params.get("release") else None
        self.state_dir = params["state_dir"]

    def container_name(self, worker):
        return f"{self.name}-worker-{worker}"

    def stop_timeout(self, worker):
        return int(worker.get("stop_timeout") or self.p["stop_timeout"])

    # --- what runs ---

    def existing(self):
        """{worker name: docker inspect} of this app's worker containers on the node, running or not."""
        _rc, out, _err = self.docker.call("ps", "--all", "--quiet", "--no-trunc", "--filter",
                                          f"label={LABEL_WORKER_OF}={self.name}")
        ids = out.split()
        if not ids:
            return {}
        _rc, out, _err = self.docker.call("container", "inspect", *ids)
        found = {}
        for info in json.loads(out or "[]"):
            labels = (info.get("Config") or {}).get("Labels") or {}
            found[labels.get(LABEL_WORKER) or info.get("Name", "").lstrip("/")] = info
        return found

    def desired_fingerprint(self, worker, image_id):
        return fingerprint(config_key(self.state_dir) if os.path.isdir(self.state_dir) else b"-", {
            "image_id": image_id,
            "release": self.p["release"],
            "env": self.p["env"],
            "secret_env": self.p["secret_env"],
            "command": worker["command"],
            "stop_timeout": self.stop_timeout(worker),
            "run_options": self.p["run_options"],
        })

    def plan(self, check_mode=False):
        """(image inspect or None, {name: info} found, [workers to start], [names to stop]) - nothing changed.

        In check mode an image that is not on the node yet (a deploy plans before it pulls) means every listed
        worker would be replaced; otherwise it is an error."""
        found = self.existing()
        wanted = {w["name"]: w for w in self.p["workers"]}
        absent = set(self.p["absent"])
        image = None
        if wanted:
            image = self.docker.image(self.ref)
            if image is None and not check_mode:
                raise WorkersFailed(f"Image {self.ref} is not on the node: pull it first (deploy_rails.yml pulls it "
                                    "on every node that changes).")
            image = image or {"Id": None}
        to_start, to_stop = [], []
        for name, info in sorted(found.items()):
            labels = (info.get("Config") or {}).get("Labels") or {}
            state = ((info.get("State") or {}).get("Status") or "").lower()
            worker = wanted.get(name)
            keep = (
                worker is not None
                and name not in absent
                and state in LIVE_STATES
                and info.get("Image") == image["Id"]
                and labels.get(LABEL_FINGERPRINT) == self.desired_fingerprint(worker, image["Id"])
            )
            if not keep and (worker is not None or self.p["prune"] or name in absent):
                to_stop.append(name)
        for name, worker in sorted(wanted.items()):
            if name not in found or name in to_stop:
                to_start.append(worker)
        return image, found, to_start, to_stop

    # --- changes ---

    def run(self, check_mode=False):
        image, found, to_start, to_stop = self.plan(check_mode)
        before = {n: ((i.get("Config") or {}).get("Labels") or {}).get(LABEL_RELEASE) for n, i in found.items()}
        after = {n: r for n, r in before.items() if n not in to_stop}
        after.update({w["name"]: str(self.p["release"]) for w in to_start})
        result = {
            "changed": bool(to_start or to_stop),
            "started": [self.container_name(w["name"]) for w in to_start],
            "stopped": [],
            "workers": {self.container_name(n): r for n, r in sorted(after.items())},
            "diff": {"before": _lines(before), "after": _lines(after)},
        }
        if check_mode or not result["changed"]:
            result["stopped"] = [{"container": self.container_name(n)} for n in to_stop]
            return result
        # Every old generation is gone before any new one starts.
        result["stopped"] = self.stop(found, to_stop)
        for worker in to_start:
            self.start(worker, image)
        self.confirm_up(to_start)
        return result

    def stop(self, found, names):
        """Stop (SIGTERM, then each one's stop timeout) and remove the named workers; all at once, grouped by
        timeout. Returns, per container, how it ended: its exit code and the seconds the stop took."""
        stopped = []
        live = [n for n in names if ((found[n].get("State") or {}).get("Status") or "").lower() in LIVE_STATES]
        by_timeout = {}
        for name in live:
            # The timeout the container was started with (a worker taken out of the configuration has no other).
            timeout = int((found[name].get("Config") or {}).get("StopTimeout") or self.p["stop_timeout"])
            by_timeout.setdefault(timeout, []).append(self.container_name(name))
        started = self.clock()
        for timeout, containers in sorted(by_timeout.items()):
            self.docker.call("stop", "--time", str(timeout), *containers)
        seconds = round(self.clock() - started, 1)
        for name in names:
            container = self.container_name(name)
            state = ((self.docker.container(container) or {}).get("State") or {})
            stopped.append({"container": container, "exit_code": state.get("ExitCode"),
                            "seconds": seconds if name in live else 0.0})
            self.docker.remove(container)
            remove_secrets(self.state_dir, container)
        return stopped

    def start(self, worker, image):
        container = self.container_name(worker["name"])
        self.docker.remove(container)
        secrets_file = write_secrets(self.state_dir, container, self.p["secret_env"])
        labels = {
            LABEL_WORKER_OF: self.name,
            LABEL_WORKER: worker["name"],
            LABEL_RELEASE: str(self.p["release"]),
            LABEL_FINGERPRINT: self.desired_fingerprint(worker, image["Id"]),
        }
        try:
            args = run_args(name=container, image_ref=self.ref, image_info=image, env=dict(self.p["env"]),
                            secrets_file=secrets_file, command=worker["command"], labels=labels,
                            restart="unless-stopped", stop_timeout=self.stop_timeout(worker),
                            extra=self.p["run_options"])
            self.docker.call(*args)
        except DockerError as exc:
            self.docker.remove(container)
            remove_secrets(self.state_dir, container)
            raise WorkersFailed(f"Worker {worker['name']} ({self.ref}) could not start: {exc}") from exc

    def confirm_up(self, workers):
        """Each started worker still runs after start_check_seconds (a command that is missing or exits at once
        is caught here, not by the first job); one that does not is removed."""
        if not workers:
            return
        deadline = self.clock() + float(self.p["start_check_seconds"])
        while True:
            for worker in workers:
                container = self.container_name(worker["name"])
                state = (self.docker.container(container) or {}).get("State") or {}
                # One that exited, also one its restart policy brought back, would only crash again, over and over:
                # it is removed.
                if (state.get("Status") or "") != "running" or int(state.get("RestartCount") or 0) > 0:
                    logs = self.docker.logs(container, tail=20)
                    self.docker.remove(container)
                    remove_secrets(self.state_dir, container)
                    raise WorkersFailed(
                        f"Worker {worker['name']} ({self.ref}) did not stay up: {state.get('Status') or 'gone'}"
                        f" (exit code {state.get('ExitCode')}); last log lines: "
                        + " | ".join(logs[-5:]), container=container, container_logs=logs)
            if self.clock() >= deadline:
                return
            self.sleep(0.25)


def _lines(releases):
    return "".join(f"{name}: release {release}\n" for name, release in sorted(releases.items()))
