"""app_command run in-process with its module args: what it refuses, and that check mode runs nothing.

Running docker is for the integration tests; here any attempt to find or run docker fails the test.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.railsdeploy.aws.plugins.modules import app_command


@pytest.fixture
def no_docker(monkeypatch):
    """Any use of docker (finding it, or running anything) is recorded and fails."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"docker must not be used here: {args}")

    monkeypatch.setattr(AnsibleModule, "get_bin_path", refuse)
    monkeypatch.setattr(AnsibleModule, "run_command", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)
    return calls


def run(monkeypatch, capsys, check_mode: bool = False, **args) -> dict:
    monkeypatch.setattr(module_utils_internal, "is_controller", False)
    module_args = {"image": "registry.example/shop:42", "command": ["bin/rails", "db:migrate"],
                   "_ansible_check_mode": check_mode, **args}
    with patch_module_args(module_args), pytest.raises(SystemExit) as exit_:
        app_command.main()
    result = json.loads(capsys.readouterr().out)
    result["rc_exit"] = exit_.value.code
    return result


@pytest.mark.parametrize(
    ("args", "errors"),
    [
        ({"env": {"1BAD": "x"}}, ["env: '1BAD' is not a valid environment variable name"]),
        ({"env": {"RAILS-ENV": "x", "OK": "y"}}, ["env: 'RAILS-ENV' is not a valid environment variable name"]),
        ({"secret_env": {"DATABASE URL": "postgres://"}},
         ["secret_env: 'DATABASE URL' is not a valid environment variable name"]),
        ({"command": []}, ["command must not be empty"]),
        ({"timeout": 0}, ["timeout must be at least 1 second"]),
        ({"timeout": -5}, ["timeout must be at least 1 second"]),
        ({"env": {"A-B": 1}, "secret_env": {"": "x"}, "command": [], "timeout": 0},
         ["env: 'A-B' is not a valid environment variable name",
          "secret_env: '' is not a valid environment variable name",
          "command must not be empty", "timeout must be at least 1 second"]),
    ],
)
@pytest.mark.parametrize("check_mode", [False, True])
def test_invalid_input_is_refused_before_anything_runs(monkeypatch, capsys, tmp_path: Path, no_docker, args, errors,
                                                       check_mode):
    state_dir = tmp_path / "state"

    result = run(monkeypatch, capsys, check_mode, state_dir=str(state_dir), **args)

    assert result["rc_exit"] == 1
    assert result["failed"] is True
    assert result["msg"] == "; ".join(errors)
    assert no_docker == []
    assert not state_dir.exists()


def test_a_secret_value_never_appears_in_the_error(monkeypatch, capsys, no_docker):
    result = run(monkeypatch, capsys, secret_env={"BAD NAME": "hunter2-very-secret"})

    assert result["failed"] is True
    assert "hunter2-very-secret" not in json.dumps(result)


def test_check_mode_runs_nothing(monkeypatch, capsys, tmp_path: Path, no_docker):
    state_dir = tmp_path / "state"

    result = run(monkeypatch, capsys, check_mode=True, name="migrate", state_dir=str(state_dir),
                 env={"RAILS_ENV": "production"}, secret_env={"DATABASE_URL": "postgres://u:p@db/shop"})

    assert result["rc_exit"] == 0, result
    assert result["changed"] is True
    assert result["container"].startswith("migrate-")
    assert "rc" not in result and "stdout" not in result
    assert no_docker == []
    assert not state_dir.exists()  # no secrets file written either


class FakeDocker:
    """The two reads like() makes: a container's and an image's inspect."""

    def __init__(self, container=None, image=None):
        self._container, self._image = container, image

    def container(self, name):
        return self._container

    def image(self, ref):
        return self._image


SERVING = {
    "Image": "sha256:" + "ab" * 32,
    "State": {"Running": True},
    "Config": {"Image": "registry.example/shop:42", "Env": ["RAILS_ENV=production", "ASSET_HOST=https://cdn",
                                                            "WEIRD=a=b", "PATH=/usr/bin"]},
    "Mounts": [{"Source": "/var/lib/railsdeploy/rails_app/secrets/rails-blue.env",
                "Destination": "/run/railsdeploy/secrets.env"}],
}


def test_like_takes_the_serving_containers_image_environment_and_secrets_file():
    image = {"Id": SERVING["Image"], "Config": {"Cmd": ["bin/rails", "server"]}}

    ref, info, env, secrets = app_command.like(FakeDocker(SERVING, image), "rails-blue")

    assert ref == SERVING["Image"]  # the image it runs, even if the tag has moved since
    assert info is image
    assert env == {"RAILS_ENV": "production", "ASSET_HOST": "https://cdn", "WEIRD": "a=b", "PATH": "/usr/bin"}
    assert secrets == "/var/lib/railsdeploy/rails_app/secrets/rails-blue.env"


@pytest.mark.parametrize(
    ("container", "image", "message"),
    [
        (None, {}, "No running container rails-blue"),
        ({**SERVING, "State": {"Running": False}}, {}, "No running container rails-blue"),
        ({**SERVING, "Mounts": []}, {}, "has no secrets file"),
        (SERVING, None, "is gone from the node"),
    ],
)
def test_like_refuses_what_is_no_serving_app_container(container, image, message):
    with pytest.raises(app_command.DockerError, match=message):
        app_command.like(FakeDocker(container, image), "rails-blue")


def test_like_excludes_image_and_secrets(monkeypatch, capsys, no_docker):
    result = run(monkeypatch, capsys, like="rails-blue", secret_env={"A": "b"})

    assert result["failed"] is True
    assert "mutually exclusive" in result["msg"]
    assert no_docker == []
