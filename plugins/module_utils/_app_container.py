# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Running app containers whose secrets stay out of ``docker inspect`` (rails_release, app_workers, app_command).

Docker shows every variable given with ``--env`` or ``--env-file`` in ``docker inspect``. Secrets
(``DATABASE_URL``, ``SECRET_KEY_BASE``) are therefore written to a file on the node - in a directory
only root can enter - which is bind-mounted read-only into the container, and the container's command
is wrapped in ``/bin/sh -c`` that exports the file's variables and then ``exec``s the image's own
entrypoint and command. ``docker inspect`` shows the file's path, never its content.

Everything here talks to the ``docker`` CLI through a runner ``run(argv) -> (rc, stdout, stderr)`` so
that it can be tested without an engine.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets as _secrets
import shlex
import tempfile

SECRETS_TARGET = "/run/railsdeploy/secrets.env"
# Labels of the containers the collection starts (the web slots and the workers): the release, and the keyed
# fingerprint of everything that makes a container what it is (a differing one means: replace it).
LABEL_RELEASE = "railsdeploy.release"
LABEL_FINGERPRINT = "railsdeploy.fingerprint"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The wrapper: $0 is the secrets file, "$@" the image's entrypoint and command.
WRAPPER = 'set -a; . "$0"; set +a; exec "$@"'


class DockerError(Exception):
    """A docker CLI call failed; the message says which and why."""


def env_errors(env, what):
    """Names in ``env`` that are not valid variable names, as messages."""
    return [f"{what}: {name!r} is not a valid environment variable name"
            for name in env if not ENV_NAME.match(str(name))]


def checked_params(module, errors):
    """``module.params`` of a module that runs app containers (rails_release, app_workers, app_command), checked.

    Fails the module with every problem at once: the names in its options ``env`` and ``secret_env`` that are no
    variable names, then the module's own ``errors``. Otherwise the values of ``env`` and ``secret_env`` become
    strings, as a container's environment holds them.
    """
    params = module.params
    errors = env_errors(params["env"], "env") + env_errors(params["secret_env"], "secret_env") + errors
    if errors:
        module.fail_json(msg="; ".join(errors))
    for option in ("env", "secret_env"):
        params[option] = {name: str(value) for name, value in params[option].items()}
    return params


def render_env_file(secret_env):
    """Shell-sourceable ``NAME='value'`` lines, sorted by name."""
    lines = ["# Written by railsdeploy.aws; sourced by the container's command wrapper. Do not edit."]
    for name in sorted(secret_env):
        lines.append(f"{name}={shlex.quote(str(secret_env[name]))}")
    return "\n".join(lines) + "\n"


def write_private_file(path, content, mode=0o444):
    """Write ``content`` to ``path`` atomically. Returns True when the content changed.

    The file itself is readable inside the container by whatever user the image runs as; on the node it
    is protected by its directory, which only root may enter (see ``ensure_private_dir``).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == content and (os.stat(path).st_mode & 0o777) == mode:
                return False
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def ensure_private_dir(path):
    """Create ``path`` (and parents) and make it root-only (0700)."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


def secrets_path(state_dir, container):
    """The secrets file of ``container`` in the root-only ``<state_dir>/secrets``."""
    return os.path.join(state_dir, "secrets", f"{container}.env")


def write_secrets(state_dir, container, secret_env):
    """Write ``container``'s secrets file (its directories made root-only first); returns its path."""
    ensure_private_dir(state_dir)
    ensure_private_dir(os.path.join(state_dir, "secrets"))
    path = secrets_path(state_dir, container)
    write_private_file(path, render_env_file(secret_env))
    return path


def remove_secrets(state_dir, container):
    """Delete ``container``'s secrets file, if there is one."""
    try:
        os.unlink(secrets_path(state_dir, container))
    except FileNotFoundError:
        pass


def config_key(state_dir):
    """A random per-node key for fingerprints of the configuration (created once, root-only)."""
    path = os.path.join(state_dir, "fingerprint.key")
    try:
        with open(path, "rb") as handle:
            key = handle.read()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    key = _secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def fingerprint(key, data):
    """Keyed hash of a JSON-able value: equal settings give equal fingerprints; secrets cannot be guessed from it."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, blob, hashlib.sha256).hexdigest()[:32]


class Docker:
    """The docker CLI, through ``run(argv) -> (rc, stdout, stderr)``."""

    def __init__(self, run, binary="docker"):
        self._run = run
        self.binary = binary

    def call(self, *args, check=True):
        argv = [self.binary, *args]
        rc, out, err = self._run(argv)
        if check and rc != 0:
            command = " ".join(shlex.quote(a) for a in args)
            raise DockerError(f"`docker {command}` failed (rc {rc}): {(err or out).strip()}")
        return rc, out, err

    def _inspect(self, kind, ref):
        rc, out, _err = self.call(kind, "inspect", ref, check=False)
        if rc != 0:
            return None
        data = json.loads(out or "[]")
        return data[0] if data else None

    def container(self, name):
        """``docker container inspect`` of ``name``, or None."""
        return self._inspect("container", name)

    def image(self, ref):
        """``docker image inspect`` of ``ref``, or None when the image is not on the node."""
        return self._inspect("image", ref)

    def remove(self, name):
        self.call("rm", "--force", name, check=False)

    def stop(self, name, timeout):
        self.call("stop", "--time", str(int(timeout)), name)

    def kill(self, name, signal):
        self.call("kill", "--signal", signal, name)

    def logs(self, name, tail=20):
        rc, out, err = self.call("logs", "--tail", str(tail), name, check=False)
        return [line for line in (out + err).splitlines() if line.strip()][-tail:] if rc == 0 else []


def image_command(image_info, command=None):
    """The argv the image would run: its entrypoint, then ``command`` or its own CMD."""
    config = image_info.get("Config") or {}
    entrypoint = list(config.get("Entrypoint") or [])
    cmd = list(command) if command else list(config.get("Cmd") or [])
    argv = entrypoint + cmd
    if not argv:
        raise DockerError(
            f"image {image_info.get('Id', '?')[:19]} has neither ENTRYPOINT nor CMD, and no command was given")
    return argv


def run_args(*, name, image_ref, image_info, env, secrets_file, command=None, labels=None, publish=None,
             restart=None, stop_timeout=None, detach=True, remove=False, extra=None):
    """``docker run`` arguments for an app container whose secrets come from ``secrets_file``."""
    args = ["run"]
    if detach:
        args.append("--detach")
    if remove:
        args.append("--rm")
    args += ["--name", name]
    for key in sorted(env):
        args += ["--env", f"{key}={env[key]}"]
    for key in sorted(labels or {}):
        args += ["--label", f"{key}={labels[key]}"]
    if publish:
        args += ["--publish", publish]
    if restart:
        args += ["--restart", restart]
    if stop_timeout is not None:
        args += ["--stop-timeout", str(int(stop_timeout))]
    args += ["--mount", f"type=bind,source={secrets_file},target={SECRETS_TARGET},readonly"]
    args += list(extra or [])
    args += ["--entrypoint", "/bin/sh", image_ref, "-c", WRAPPER, SECRETS_TARGET]
    args += image_command(image_info, command)
    return args
