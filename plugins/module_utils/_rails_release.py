# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The zero-downtime release swap behind railsdeploy.aws.rails_release (blue/green on one node).

Two slots, blue and green, each a container publishing the app on its own loopback port. The node's
proxy (haproxy, holding the load balancer's port) sends requests to the slot named in its backend file.
A deploy starts the new release in the idle slot, waits for its health check, rewrites the backend file,
reloads the proxy gracefully (old workers finish their requests), confirms through the proxy that the
new slot answers, waits for in-flight requests to drain - until the proxy's old worker process has exited
(haproxy in master-worker mode, as the official image runs it), at most drain_seconds - and only then stops
the old container. Any failure before the switch leaves the old release serving and removes the new container.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from datetime import datetime, timezone
from http.client import HTTPConnection, HTTPException

from ._app_container import (
    LABEL_FINGERPRINT,
    LABEL_RELEASE,
    Docker,
    DockerError,
    config_key,
    fingerprint,
    remove_secrets,
    run_args,
    write_private_file,
    write_secrets,
)

SLOTS = ("blue", "green")
LABEL_APP = "railsdeploy.app"
LABEL_SLOT = "railsdeploy.slot"
HEADER_SLOT = "X-Railsdeploy-Slot"
HEADER_RELEASE = "X-Railsdeploy-Release"
# How often a new container's health check and the proxy's switch are polled: a deploy waits at most this long
# past the moment each is ready (once per node), so well under a second.
HEALTH_POLL_SECONDS = 0.25
SWITCH_POLL_SECONDS = 0.1
BACKEND_SERVER = re.compile(r"^\s*server\s+\S+\s+127\.0\.0\.1:(\d+)\b", re.MULTILINE)


class DeployFailed(Exception):
    """The deploy stopped; the old release (if any) still serves. ``details`` go into the result."""

    def __init__(self, message, **details):
        super().__init__(message)
        self.details = details


def http_probe(port, path, timeout=2.0):
    """GET http://127.0.0.1:<port><path>: (status, headers dict) or (None, error text)."""
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "railsdeploy-health-check", "Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}
    except (OSError, HTTPException, socket.timeout) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


def proxy_workers(master_pid, proc="/proc"):
    """PIDs of the processes whose parent is ``master_pid``: haproxy's workers in master-worker mode (-W).

    After a graceful reload (SIGUSR2) the master starts new workers; each old one finishes the requests it holds
    and exits. An empty set when the master is unknown (0) or has no children to watch.
    """
    if not master_pid:
        return set()
    pids = set()
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, "stat"), encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue  # exited while we looked
        # pid (comm) state ppid ...: comm may hold spaces or parentheses, so split after the last ')'.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(master_pid):
            pids.add(int(entry))
    return pids


def render_backend(container, port, release, slot):
    release_text = str(release).replace('"', "")
    return (
        "# Written by railsdeploy.aws.rails_release on every deploy: where this node's proxy sends requests.\n"
        "backend app\n"
        # Only for the node's own requests (the deploy's health check): the public learns nothing of releases.
        f'    http-response set-header {HEADER_RELEASE} "{release_text}" if {{ src 127.0.0.1 }}\n'
        f"    http-response set-header {HEADER_SLOT} {slot} if {{ src 127.0.0.1 }}\n"
        f"    server {container} 127.0.0.1:{port}\n"
    )


HISTORY_FILE = "releases.json"


def read_history(state_dir):
    """The node's release history in ``state_dir``, newest first (the serving release is the first): entries with
    release, image, image_id and deployed_at. Empty when the node never deployed (or the file is unreadable)."""
    try:
        with open(os.path.join(state_dir, HISTORY_FILE), encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, list) else []
    except (FileNotFoundError, ValueError):
        return []


def repository_of(entry):
    """The image repository an entry of the history was deployed from (its image without the release's tag)."""
    image, release = str(entry.get("image") or ""), str(entry.get("release") or "")
    suffix = ":" + release
    return image[: -len(suffix)] if release and image.endswith(suffix) else image


class ReleaseSwap:
    """One node's deploy. ``params`` are the module's options; the rest is injected for tests."""

    def __init__(self, params, docker: Docker, probe=http_probe, sleep=time.sleep, clock=time.monotonic,
                 now=lambda: datetime.now(timezone.utc), hostname=None, workers=proxy_workers):
        self.p = params
        self.docker = docker
        self.probe = probe
        self.workers = workers
        self.sleep = sleep
        self.clock = clock
        self.now = now
        self.hostname = hostname or socket.gethostname()
        self.name = params["name"]
        self.ref = f"{params['image']}:{params['release']}"
        self.state_dir = params["state_dir"]
        self.history_file = os.path.join(self.state_dir, HISTORY_FILE)
        self.messages = []

    # --- where things are ---

    def slot_port(self, slot):
        return int(self.p["base_port"]) + SLOTS.index(slot)

    def slot_container(self, slot):
        return f"{self.name}-{slot}"

    def live_slot(self):
        """The slot the proxy's backend file names, or None (first deploy)."""
        match = BACKEND_SERVER.search(self.backend_text() or "")
        if not match:
            return None
        for slot in SLOTS:
            if self.slot_port(slot) == int(match.group(1)):
                return slot
        return None

    def backend_text(self):
        """The proxy's backend file as it is, or None."""
        try:
            with open(self.p["proxy_backend_file"], encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def history(self):
        return read_history(self.state_dir)

    def proxy_master(self):
        """The running proxy container's main process (haproxy's master), as the node sees it; 0 when the proxy
        does not run (one inspect answers both)."""
        state = (self.docker.container(self.p["proxy_container"]) or {}).get("State") or {}
        return int(state.get("Pid") or 0) if state.get("Running") else 0

    # --- the deploy ---

    def desired_fingerprint(self, image_id):
        return fingerprint(config_key(self.state_dir) if os.path.isdir(self.state_dir) else b"-", {
            "image_id": image_id,
            "release": self.p["release"],
            "env": self.p["env"],
            "secret_env": self.p["secret_env"],
            "command": self.p["command"],
            "container_port": self.p["container_port"],
            "run_options": self.p["run_options"],
        })

    def current(self):
        """(slot, container inspect) of the release the proxy serves, or (None, None)."""
        slot = self.live_slot()
        if slot is None:
            return None, None
        return slot, self.docker.container(self.slot_container(slot))

    def plan(self):
        """What the node runs and whether the wanted release differs: a dict for the result."""
        slot, info = self.current()
        labels = ((info or {}).get("Config") or {}).get("Labels") or {}
        image = self.docker.image(self.ref)
        running = bool(info and (info.get("State") or {}).get("Running"))
        same = bool(
            image
            and running
            and labels.get(LABEL_FINGERPRINT) == self.desired_fingerprint(image["Id"])
            and info.get("Image") == image["Id"]
            # A backend file written by an older version of this module (its headers sent to everyone) is renewed.
            and self.backend_text() == render_backend(self.slot_container(slot), self.slot_port(slot),
                                                      self.p["release"], slot)
        )
        return {
            "live_slot": slot,
            "live_release": labels.get(LABEL_RELEASE) if info else None,
            "live_running": running,
            "image_present": image is not None,
            "image_id": image["Id"] if image else None,
            "up_to_date": same,
        }

    def run(self, check_mode=False):
        plan = self.plan()
        result = {
            "release": self.p["release"],
            "image": self.ref,
            "previous_release": plan["live_release"],
            "slot": plan["live_slot"],
            "pulled": False,
            "changed": False,
            "needs_change": not plan["up_to_date"],
            "image_present": plan["image_present"],
        }
        if plan["up_to_date"]:
            result["container"] = self.slot_container(plan["live_slot"])
            result["retained"] = self.retained_refs(self.history())
            return result
        result["changed"] = True
        result["diff"] = {"before": f"release: {plan['live_release']}\n", "after": f"release: {self.p['release']}\n"}
        if check_mode:
            result["slot"] = self.other(plan["live_slot"])
            result["container"] = self.slot_container(result["slot"])
            return result
        try:
            image = self.ensure_image(plan, result)
            new_slot = self.other(plan["live_slot"])
            self.switch(plan, new_slot, image, result)
        except DeployFailed as exc:
            self.audit(plan["live_release"], "failed", str(exc))
            raise
        self.audit(plan["live_release"], "success", "")
        return result

    @staticmethod
    def other(slot):
        return "green" if slot == "blue" else "blue"

    def ensure_image(self, plan, result):
        image = self.docker.image(self.ref)
        if image is None:
            if not self.p["pull"]:
                raise DeployFailed(f"Image {self.ref} is not on {self.hostname} and pull is false: pull it first.")
            try:
                self.docker.call("pull", "--quiet", self.ref)
            except DockerError as exc:
                raise DeployFailed(f"Could not pull {self.ref} on {self.hostname}: {exc}") from exc
            result["pulled"] = True
            image = self.docker.image(self.ref)
            if image is None:
                raise DeployFailed(f"{self.ref} was pulled but is not on {self.hostname}")
        return image

    def start(self, slot, image):
        container = self.slot_container(slot)
        port = self.slot_port(slot)
        # A container left in the idle slot (a failed deploy, a crash) is not serving: replace it.
        self.docker.remove(container)
        secrets_file = write_secrets(self.state_dir, container, self.p["secret_env"])
        env = dict(self.p["env"])
        labels = {
            **self.p["labels"],
            LABEL_APP: self.name,
            LABEL_RELEASE: str(self.p["release"]),
            LABEL_SLOT: slot,
            LABEL_FINGERPRINT: self.desired_fingerprint(image["Id"]),
        }
        try:
            # run_args fails (DockerError) for an image with nothing to run: a failed deploy like any other.
            args = run_args(
                name=container, image_ref=self.ref, image_info=image, env=env, secrets_file=secrets_file,
                command=self.p["command"], labels=labels,
                publish=f"127.0.0.1:{port}:{self.p['container_port']}", restart="unless-stopped",
                stop_timeout=self.p["stop_timeout"], extra=self.p["run_options"],
            )
            self.docker.call(*args)
        except DockerError as exc:
            self.docker.remove(container)
            remove_secrets(self.state_dir, container)
            raise DeployFailed(f"{self.hostname}: could not start {container} ({self.ref}): {exc}") from exc
        return container, port, secrets_file

    def wait_healthy(self, container, port):
        """Poll the new container's health check directly (not through the proxy) until 200."""
        path = self.p["health_path"]
        deadline = self.clock() + float(self.p["health_timeout"])
        last = "no answer yet"
        while True:
            status, detail = self.probe(port, path)
            if status == 200:
                return
            last = f"HTTP {status}" if status is not None else detail
            info = self.docker.container(container)
            state = (info or {}).get("State") or {}
            if not state.get("Running"):
                reason = (f"the container exited (code {state.get('ExitCode', '?')})" if info
                          else "the container is gone")
                return self.unhealthy(container, port, f"{reason}; last check: {last}")
            if self.clock() >= deadline:
                return self.unhealthy(container, port,
                                      f"no 200 within {self.p['health_timeout']} s; last answer: {last}")
            self.sleep(HEALTH_POLL_SECONDS)

    def unhealthy(self, container, port, why):
        logs = self.docker.logs(container)
        self.docker.remove(container)
        remove_secrets(self.state_dir, container)
        raise DeployFailed(
            f"{self.hostname}: release {self.p['release']} failed its health check "
            f"GET http://127.0.0.1:{port}{self.p['health_path']} ({why}). The previous release keeps serving; "
            f"the new container {container} was removed.",
            container_logs=logs,
        )

    def switch(self, plan, new_slot, image, result):
        old_slot = plan["live_slot"]
        old_container = self.slot_container(old_slot) if old_slot else None
        container, port, _secrets = self.start(new_slot, image)
        self.wait_healthy(container, port)

        backend_file = self.p["proxy_backend_file"]
        try:
            with open(backend_file, encoding="utf-8") as handle:
                old_backend = handle.read()
        except FileNotFoundError:
            old_backend = None
        os.makedirs(os.path.dirname(backend_file), exist_ok=True)
        write_private_file(backend_file, render_backend(container, port, self.p["release"], new_slot), mode=0o644)
        reloaded = False
        master = self.proxy_master()
        if master:
            old_workers = self.workers(master)
            try:
                self.docker.kill(self.p["proxy_container"], "USR2")
                self.wait_switched(new_slot)
            except (DockerError, DeployFailed) as exc:
                self.restore_backend(backend_file, old_backend)
                self.docker.remove(container)
                remove_secrets(self.state_dir, container)
                raise DeployFailed(
                    f"{self.hostname}: the proxy {self.p['proxy_container']} did not switch to {container}: {exc}. "
                    "Its previous backend was restored; the previous release keeps serving."
                ) from exc
            reloaded = True
        result.update(slot=new_slot, container=container, proxy_reloaded=reloaded)

        if old_container and old_container != container:
            if reloaded:
                # In-flight requests on the old release finish (the old proxy worker keeps its connections).
                result.update(self.drain(master, old_workers))
            try:
                if self.docker.container(old_container):
                    self.docker.stop(old_container, self.p["stop_timeout"])
                    self.docker.remove(old_container)
            except DockerError as exc:
                self.messages.append(f"the old container {old_container} could not be stopped: {exc}")
            remove_secrets(self.state_dir, old_container)
        history = self.record(image)
        result["retained"] = self.retained_refs(history)

    def drain(self, master, old_workers):
        """Wait until the proxy's old workers have exited (every request they held has finished), at most
        drain_seconds; without workers to watch (a proxy not in master-worker mode), wait drain_seconds."""
        cap = float(self.p["drain_seconds"])
        started = self.clock()
        if not old_workers:
            self.sleep(cap)
            return {"drain_seconds": cap, "drained": "waited drain_seconds (no proxy worker to watch)"}
        while True:
            elapsed = self.clock() - started
            if not old_workers & self.workers(master):
                return {"drain_seconds": round(elapsed, 2), "drained": "the proxy's old worker exited"}
            if elapsed >= cap:
                self.messages.append(f"the proxy's old worker still held connections after {cap:g} s (drain_seconds)")
                return {"drain_seconds": round(elapsed, 2), "drained": "drain_seconds reached"}
            self.sleep(0.1)

    def wait_switched(self, slot):
        deadline = self.clock() + float(self.p["switch_timeout"])
        last = "no answer"
        while True:
            status, headers = self.probe(int(self.p["proxy_port"]), self.p["health_path"])
            if status == 200 and isinstance(headers, dict) and headers.get(HEADER_SLOT.lower()) == slot:
                return
            served_by = headers.get(HEADER_SLOT.lower()) if isinstance(headers, dict) else headers
            last = f"HTTP {status}, {HEADER_SLOT}: {served_by}"
            if self.clock() >= deadline:
                raise DeployFailed(f"no answer from slot {slot} through port {self.p['proxy_port']} within "
                                   f"{self.p['switch_timeout']} s (last: {last})")
            self.sleep(SWITCH_POLL_SECONDS)

    def restore_backend(self, backend_file, old_backend):
        if old_backend is None:
            os.unlink(backend_file)
        else:
            write_private_file(backend_file, old_backend, mode=0o644)
        if self.proxy_master():
            self.docker.kill(self.p["proxy_container"], "USR2")

    # --- records ---

    def record(self, image):
        entry = {
            "release": str(self.p["release"]),
            "image": self.ref,
            "image_id": image["Id"],
            "deployed_at": self.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        history = [entry] + [h for h in self.history() if h.get("image") != self.ref]
        history = history[: max(int(self.p["keep_releases"]), 1)]
        write_private_file(self.history_file, json.dumps(history, indent=2) + "\n", mode=0o644)
        retained = self.p["retained_file"]
        os.makedirs(os.path.dirname(retained), exist_ok=True)
        write_private_file(retained, "# Images of the releases kept for rollback (railsdeploy.aws.rails_release).\n"
                           + "".join(f"{ref}\n" for ref in self.retained_refs(history)), mode=0o644)
        return history

    @staticmethod
    def retained_refs(history):
        return [h["image"] for h in history if h.get("image")]

    def audit(self, previous, result, detail):
        path = self.p["audit_log"]
        if not path:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        line = json.dumps({
            "time": self.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "host": self.hostname,
            "user": self.p["deployed_by"],
            "from": previous,
            "to": str(self.p["release"]),
            "result": result,
            **({"detail": detail} if detail else {}),
        }, sort_keys=False)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
