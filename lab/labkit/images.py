"""Lab images, built locally from Debian packages and rebuilt only when their recipe changes.

Each image is a directory under lab/images/<name>/ holding ``packages.txt`` (the Debian
packages of its root filesystem) and a ``Dockerfile`` (``ARG BASE`` / ``FROM ${BASE}``)
that adds files. The root filesystem comes from ``mmdebstrap`` using this machine's own
apt sources and is imported with ``docker import``; no registry is ever contacted.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .net import free_port, wait_http
from .sh import LabError, docker, log, out, run

RECIPE_LABEL = "railsdeploy.lab.recipe"
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


@dataclass(frozen=True)
class Build:
    name: str  # directory under lab/images
    tag: str
    build_args: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return config.image(self.name, self.tag)


# Everything `make setup` builds. The test app comes in two releases plus one whose
# health check fails, for deploy tests; the real Rails app (Rails from Debian's packages) in two, for
# `make demo` and the deploy benchmark; the rails nodes' proxy in two variants, for proxy upgrades.
BUILDS = [
    Build("node", "latest"),
    Build("balancer", "latest"),
    Build("registry", "latest"),
    Build("postgres", "15"),
    Build("etcd", "3.4"),
    Build("testapp", "1", {"APP_RELEASE": "1"}),
    Build("testapp", "2", {"APP_RELEASE": "2"}),
    Build("testapp", "broken", {"APP_RELEASE": "broken", "APP_BROKEN": "1"}),
    Build("railsapp", "1", {"APP_RELEASE": "1"}),
    Build("railsapp", "2", {"APP_RELEASE": "2"}),
    Build("proxy", "1", {"PROXY_VARIANT": "1"}),
    Build("proxy", "2", {"PROXY_VARIANT": "2"}),
]


# What the lab's registry serves from the start, as Docker Hub would (name:tag in the registry -> local image).
PUBLISHED = {"postgres:15": config.image("postgres", "15"),
             "etcd:3.4": config.image("etcd", "3.4"),
             "testapp:1": config.image("testapp", "1"),
             "testapp:2": config.image("testapp", "2"),
             "testapp:broken": config.image("testapp", "broken"),
             "railsapp:1": config.image("railsapp", "1"),
             "railsapp:2": config.image("railsapp", "2"),
             "haproxy:2.6-lab1": config.image("proxy", "1"),
             "haproxy:2.6-lab2": config.image("proxy", "2")}
REGISTRY_DATA = "/var/lib/docker-registry"  # lab/images/registry/config.yml
PUBLISHED_MARK = ".railsdeploy-published"


# Images the collection ships a recipe for (roles/cluster_images, built for production by playbooks/build_images.yml
# on debian:bookworm-slim): the lab builds them from the same files, on its own root filesystem.
SHIPPED_DIR = config.REPO / "roles" / "cluster_images" / "files"


def recipe_dir(name: str) -> Path:
    """The build context of an image: the collection's recipe when it ships one, else the lab's own."""
    shipped = SHIPPED_DIR / name
    return shipped if shipped.is_dir() else config.IMAGES_DIR / name


def packages(name: str) -> list[str]:
    lines = (recipe_dir(name) / "packages.txt").read_text().splitlines()
    return sorted({ln.split("#", 1)[0].strip() for ln in lines} - {""})


def rootfs_ref(name: str) -> str:
    digest = hashlib.sha256("\n".join(packages(name)).encode()).hexdigest()[:12]
    return config.image(f"{name}-rootfs", digest)


def recipe_hash(build: Build) -> str:
    """Hash of everything that goes into an image: its files, its root fs and build args."""
    h = hashlib.sha256()
    root = recipe_dir(build.name)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(rootfs_ref(build.name).encode())
    for key, value in sorted(build.build_args.items()):
        h.update(f"{key}={value}".encode())
    return h.hexdigest()[:16]


def image_label(ref: str, label: str) -> str | None:
    proc = docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}', ref, check=False)
    if proc.returncode != 0:
        return None
    return proc.stdout.strip()


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


def apt_sources() -> Path:
    for path in APT_SOURCES:
        if path.exists():
            return path
    looked = ", ".join(map(str, APT_SOURCES))
    raise LabError(f"no apt sources found on this machine (looked at {looked})")


def build_rootfs(name: str) -> str:
    ref = rootfs_ref(name)
    if image_exists(ref):
        return ref
    if not shutil.which("mmdebstrap"):
        raise LabError("mmdebstrap is missing: run `make setup` (it installs it with apt-get)")
    log(f"building root filesystem {ref} from Debian packages ({len(packages(name))} packages)")
    strap = subprocess.Popen(
        ["mmdebstrap", "--quiet", "--variant=apt", "--include=" + ",".join(packages(name)),
         "bookworm", "-", str(apt_sources())],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    imp = subprocess.run(["docker", "import", "-", ref], stdin=strap.stdout, capture_output=True, text=True)
    strap.stdout.close()
    err = strap.stderr.read().decode(errors="replace")
    if strap.wait() != 0 or imp.returncode != 0:
        docker("image", "rm", ref, check=False)
        raise LabError(f"building {ref} failed:\n{err}\n{imp.stderr}")
    return ref


def build_image(build: Build, base: str) -> bool:
    """Build one image when it is missing or its recipe changed; True when built."""
    want = recipe_hash(build)
    if image_label(build.ref, RECIPE_LABEL) == want:
        return False
    log(f"building {build.ref}")
    args = ["build", "--quiet", "--label", f"{RECIPE_LABEL}={want}", "--label", f"{config.LABEL}.image=1",
            "--build-arg", f"BASE={base}", "-t", build.ref]
    for key, value in build.build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    docker(*args, str(recipe_dir(build.name)), timeout=1800)
    return True


def prune_stale_rootfs(name: str) -> None:
    keep = rootfs_ref(name)
    repo = keep.rsplit(":", 1)[0]
    for line in run(["docker", "images", repo, "--format", "{{.Repository}}:{{.Tag}}"]).stdout.split():
        if line != keep:
            docker("image", "rm", line, check=False)


def registry_cache() -> str:
    """Name of the Docker volume holding a registry's storage with PUBLISHED pushed into it, keyed by the recipes
    of those images and of the registry: a changed recipe means a new cache."""
    by_ref = {b.ref: b for b in BUILDS}
    h = hashlib.sha256()
    for name, ref in sorted(PUBLISHED.items()):
        h.update(f"{name}={recipe_hash(by_ref[ref])}\n".encode())
    h.update(recipe_hash(by_ref[config.image("registry")]).encode())
    return f"{config.PREFIX}-registry-cache-{h.hexdigest()[:12]}"


def ensure_registry_cache() -> str:
    """Push PUBLISHED once into a registry whose storage is the cache volume (kept, like the images, across
    lab-down/lab-up and across runs); every lab's registry starts from a copy of it. Returns the volume name."""
    volume = registry_cache()
    if docker("run", "--rm", "--entrypoint", "test", "-v", f"{volume}:/cache:ro", config.image("registry"),
              "-e", f"/cache/{PUBLISHED_MARK}", check=False).returncode == 0:
        return volume
    log(f"publishing {', '.join(PUBLISHED)} into the registry cache {volume}")
    docker("volume", "rm", "--force", volume, check=False)
    docker("volume", "create", "--label", f"{config.LABEL}.cache=registry", volume)
    name, port = f"{volume}-fill", free_port()
    docker("rm", "--force", name, check=False)
    docker("run", "--detach", "--name", name, "--label", f"{config.LABEL}.cache=registry",
           "--publish", f"127.0.0.1:{port}:{config.REGISTRY_PORT}", "--volume", f"{volume}:{REGISTRY_DATA}",
           config.image("registry"))
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/")
        for remote_name, local in PUBLISHED.items():
            remote = f"127.0.0.1:{port}/{remote_name}"
            docker("tag", local, remote)
            docker("push", "--quiet", remote, timeout=900)
            docker("image", "rm", remote, check=False)
        docker("exec", name, "touch", f"{REGISTRY_DATA}/{PUBLISHED_MARK}")
    finally:
        docker("rm", "--force", name, check=False)
    for old in out(["docker", "volume", "ls", "-q", "--filter", f"label={config.LABEL}.cache=registry"]).split():
        if old != volume:
            docker("volume", "rm", "--force", old, check=False)
    return volume


def ensure_images(names: list[str] | None = None) -> list[str]:
    """Build the lab images that are missing or stale. Returns the refs that were built."""
    unknown = set(names or []) - {b.name for b in BUILDS}
    if unknown:
        raise LabError(f"unknown lab image(s): {', '.join(sorted(unknown))}")
    stale = [b for b in BUILDS if (names is None or b.name in names)
             and image_label(b.ref, RECIPE_LABEL) != recipe_hash(b)]
    rootfs_names = sorted({b.name for b in stale})
    # Two at a time: mmdebstrap is mostly download- and unpack-bound on 2 cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        bases = dict(zip(rootfs_names, pool.map(build_rootfs, rootfs_names), strict=True))
    built = [b.ref for b in stale if build_image(b, bases[b.name])]
    for name in rootfs_names:
        prune_stale_rootfs(name)
    if names is None:
        ensure_registry_cache()
    return built
