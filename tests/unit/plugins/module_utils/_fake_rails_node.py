"""A rails node simulated in memory for ReleaseSwap's tests (test__rails_release.py): a fake docker CLI, a fake
proxy and fake health checks.

``Node`` answers the docker commands ReleaseSwap sends (``container inspect``, ``image inspect``, ``run``,
``stop``, ``rm``, ``kill``, ``logs``, ``pull``) from a small model of containers and images, and answers
HTTP probes: a slot's port answers as its container's release behaves; the proxy's port answers from the
slot its backend file named when it last (re)loaded it - on start and on SIGUSR2, as haproxy does. Every
docker call, probe and sleep lands in ``node.events`` so that tests can check the order of the swap.
The files (state dir, backend file, retained file, audit log) are real, in a temp dir.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from ansible_collections.railsdeploy.aws.plugins.module_utils._app_container import Docker
from ansible_collections.railsdeploy.aws.plugins.module_utils._rails_release import (
    LABEL_RELEASE,
    ReleaseSwap,
)

IMAGE = "registry.example/shop"
PROXY = "rails-proxy"
PROXY_PORT = 8080
HOST = "node-1"
# docker run options that take a value (the rest are flags)
VALUE_OPTIONS = {"--name", "--env", "--label", "--publish", "--restart", "--stop-timeout", "--mount", "--entrypoint",
                 "--memory"}


def image_id(release: str) -> str:
    return "sha256:" + (release * 64)[:64]


class Node:
    """One node: docker's containers and images, the proxy, a clock, and the record of what happened."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.events: list[tuple] = []
        self.images: dict[str, dict] = {}
        self.registry: dict[str, dict] = {}  # what `docker pull` can fetch
        self.containers: dict[str, dict] = {}  # name -> docker inspect
        self.behaviour: dict[str, str] = {}  # release -> healthy | 500 | exits | boots_at:<clock time>
        self.first_healthy_answer: dict[int, float] = {}  # port -> clock time of a booting release's first 200
        self.proxy_target: tuple[str, int] | None = None  # (slot, port) the proxy loaded
        self.proxy_ignores_reload = False
        self.run_fails = ""  # stderr of a failing `docker run`
        self.backend_at_reload: list[str] = []
        self.t = 0.0
        self.ids = 0
        # haproxy in master-worker mode (start_proxy(master_worker=True)): worker pid -> when it exits. A reload
        # starts a new worker; the old ones exit old_worker_drain seconds later (their requests finished).
        self.master_pid = 0
        self.worker_exit: dict[int, float] = {}
        self.old_worker_drain = 0.35
        for release in ("1", "2", "3"):
            self.add_image(release)

    # --- setup ---

    def add_image(self, release: str, where: str = "local") -> None:
        info = {"Id": image_id(release), "Config": {"Entrypoint": ["bin/docker-entrypoint"],
                                                    "Cmd": ["./bin/rails", "server"]}}
        (self.images if where == "local" else self.registry)[f"{IMAGE}:{release}"] = info

    def params(self, **override) -> dict:
        p = dict(
            name="shop", image=IMAGE, release="1", pull=False, env={"RAILS_ENV": "production"},
            secret_env={"SECRET_KEY_BASE": "s3cret-value"}, command=None, container_port=3000, base_port=3001,
            run_options=[], labels={"team": "web"}, health_path="/up", health_timeout=10, proxy_container=PROXY,
            proxy_backend_file=str(self.root / "proxy" / "backend.cfg"), proxy_port=PROXY_PORT, switch_timeout=5,
            drain_seconds=3, stop_timeout=30, keep_releases=3,
            retained_file=str(self.root / "releases" / "retained"), state_dir=str(self.root / "state"),
            audit_log=str(self.root / "log" / "deploys.log"), deployed_by="alice@laptop",
        )
        p.update(override)
        return p

    def swap(self, **override) -> ReleaseSwap:
        return ReleaseSwap(
            self.params(**override), Docker(self.docker), probe=self.probe, sleep=self.sleep, clock=self.clock,
            now=lambda: datetime(2026, 11, 25, 4, 30, tzinfo=UTC), hostname=HOST, workers=self.workers,
        )

    def deploy(self, check_mode: bool = False, **override) -> dict:
        return self.swap(**override).run(check_mode=check_mode)

    def start_proxy(self, master_worker: bool = False) -> None:
        # A running container always has a main process; only a master-worker haproxy has workers to watch.
        self.containers[PROXY] = {"Id": "proxy", "Name": PROXY, "Image": "sha256:haproxy",
                                  "State": {"Running": True, "ExitCode": 0, "Pid": 100}, "Config": {"Labels": {}}}
        if master_worker:
            self.master_pid = 100
            self.worker_exit = {101: float("inf")}
        self.load_backend()

    def workers(self, master: int) -> set[int]:
        self.events.append(("workers", master))
        if not master or master != self.master_pid:
            return set()
        return {pid for pid, exits in self.worker_exit.items() if self.t < exits}

    def reload_workers(self) -> None:
        if self.master_pid:
            for pid in self.worker_exit:
                self.worker_exit[pid] = min(self.worker_exit[pid], self.t + self.old_worker_drain)
            self.worker_exit[max(self.worker_exit) + 1] = float("inf")

    def load_backend(self) -> None:
        path = self.root / "proxy" / "backend.cfg"
        text = path.read_text() if path.exists() else ""
        self.backend_at_reload.append(text)
        slot = re.search(r"X-Railsdeploy-Slot (\w+)", text)
        port = re.search(r"server \S+ 127\.0\.0\.1:(\d+)", text)
        self.proxy_target = (slot.group(1), int(port.group(1))) if slot and port else None

    # --- clock ---

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.events.append(("sleep", seconds))
        self.t += seconds

    # --- docker ---

    def docker(self, argv: list[str]) -> tuple[int, str, str]:
        assert argv[0] == "docker"
        args = argv[1:]
        self.events.append(("docker", *args))
        if args[:2] == ["container", "inspect"]:
            info = self.containers.get(args[2])
            return (0, json.dumps([info]), "") if info else (1, "[]", f"Error: No such container: {args[2]}")
        if args[:2] == ["image", "inspect"]:
            info = self.images.get(args[2])
            return (0, json.dumps([info]), "") if info else (1, "[]", f"Error: No such image: {args[2]}")
        if args[0] == "run":
            return self.run(args[1:])
        if args[0] == "stop":
            name = args[-1]
            if name not in self.containers:
                return 1, "", f"Error: No such container: {name}"
            self.containers[name]["State"] = {"Running": False, "ExitCode": 143}
            return 0, name, ""
        if args[:2] == ["rm", "--force"]:
            name = args[2]
            if self.containers.pop(name, None) is None:
                return 1, "", f"Error: No such container: {name}"
            return 0, name, ""
        if args[:2] == ["kill", "--signal"]:
            signal, name = args[2], args[3]
            if not (self.containers.get(name) or {}).get("State", {}).get("Running"):
                return 1, "", f"Error: container {name} is not running"
            if name == PROXY and signal == "USR2" and not self.proxy_ignores_reload:
                self.load_backend()
                self.reload_workers()
            return 0, name, ""
        if args[0] == "logs":
            name = args[-1]
            if name not in self.containers:
                return 1, "", "Error: No such container"
            return 0, "Booting Puma\n", "ActiveRecord::ConnectionNotEstablished\n"
        if args[:2] == ["pull", "--quiet"]:
            ref = args[2]
            if ref not in self.registry:
                return 1, "", f"Error response from daemon: manifest for {ref} not found"
            self.images[ref] = self.registry[ref]
            return 0, ref, ""
        raise AssertionError(f"unexpected docker call: {args}")

    def run(self, args: list[str]) -> tuple[int, str, str]:
        options: dict[str, list[str]] = {}
        i = 0
        while args[i].startswith("--"):
            if args[i] in VALUE_OPTIONS:
                options.setdefault(args[i], []).append(args[i + 1])
                i += 2
            else:
                options.setdefault(args[i], []).append("")
                i += 1
        ref, inner = args[i], args[i + 1:]
        name = options["--name"][0]
        if self.run_fails:
            return 125, "", self.run_fails
        if name in self.containers:
            return 125, "", f'Error: Conflict. The container name "/{name}" is already in use'
        if ref not in self.images:
            return 125, "", f"Unable to find image '{ref}' locally"
        labels = dict(label.split("=", 1) for label in options.get("--label", []))
        exits = self.behaviour.get(labels.get(LABEL_RELEASE, ""), "healthy") == "exits"
        self.ids += 1
        self.containers[name] = {
            "Id": f"c{self.ids}", "Name": name, "Image": self.images[ref]["Id"],
            "State": {"Running": not exits, "ExitCode": 1 if exits else 0},
            "Config": {"Labels": labels, "Env": options.get("--env", []), "Cmd": inner,
                       "Entrypoint": options["--entrypoint"]},
            "Options": options,
        }
        return 0, f"c{self.ids}\n", ""

    # --- HTTP ---

    def answer(self, port: int) -> tuple[int | None, dict | str]:
        for info in self.containers.values():
            published = (info.get("Options") or {}).get("--publish", [""])[0]
            if published.startswith(f"127.0.0.1:{port}:") and info["State"]["Running"]:
                behaviour = self.behaviour.get(info["Config"]["Labels"].get(LABEL_RELEASE), "healthy")
                if behaviour == "500":
                    return 500, {"content-type": "text/html"}
                if behaviour.startswith("boots_at:"):  # refused until then (the clock's time)
                    if self.t < float(behaviour.split(":")[1]):
                        return None, "ConnectionRefusedError: [Errno 111] Connection refused"
                    self.first_healthy_answer.setdefault(port, self.t)
                return 200, {"content-type": "text/plain"}
        return None, "ConnectionRefusedError: [Errno 111] Connection refused"

    def probe(self, port: int, path: str) -> tuple[int | None, dict | str]:
        if port == PROXY_PORT:
            if not (self.containers.get(PROXY) or {}).get("State", {}).get("Running"):
                status, headers = None, "ConnectionRefusedError: [Errno 111] Connection refused"
            elif self.proxy_target is None:
                status, headers = 503, {}
            else:
                slot, slot_port = self.proxy_target
                status, headers = self.answer(slot_port)
                if isinstance(headers, dict):
                    headers = {**headers, "x-railsdeploy-slot": slot}
                else:
                    status, headers = 503, {"x-railsdeploy-slot": slot}
        else:
            status, headers = self.answer(port)
        self.events.append(("probe", port, path, status, headers.get("x-railsdeploy-slot")
                            if isinstance(headers, dict) else None))
        return status, headers

    # --- reading the record ---

    def docker_calls(self, verb: str) -> list[tuple]:
        return [e for e in self.events if e[0] == "docker" and e[1] == verb]

    def index(self, event: tuple) -> int:
        return self.events.index(event)

    def backend(self) -> str | None:
        path = self.root / "proxy" / "backend.cfg"
        return path.read_text() if path.exists() else None

    def retained(self) -> list[str]:
        return [line for line in (self.root / "releases" / "retained").read_text().splitlines()
                if not line.startswith("#")]

    def history(self) -> list[dict]:
        return json.loads((self.root / "state" / "releases.json").read_text())

    def audit(self) -> list[dict]:
        return [json.loads(line) for line in (self.root / "log" / "deploys.log").read_text().splitlines()]

    def files(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.root)): p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()}

    def running(self, name: str) -> bool:
        return bool((self.containers.get(name) or {}).get("State", {}).get("Running"))
