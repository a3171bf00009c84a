"""_app_container: the secrets file and the /bin/sh wrapper that exports it, run for real with /bin/sh.

The wrapper and the rendered file are what a container runs, so the tests source them with the node's own
``/bin/sh`` (dash on Debian/Ubuntu, as in the app images) and read the environment the "entrypoint" sees
from a small Python program standing in for the image's entrypoint.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.railsdeploy.aws.plugins.module_utils._app_container import (
    SECRETS_TARGET,
    WRAPPER,
    Docker,
    DockerError,
    checked_params,
    config_key,
    ensure_private_dir,
    env_errors,
    fingerprint,
    image_command,
    render_env_file,
    run_args,
    write_private_file,
)

# Stands in for the image's entrypoint: prints its argv and environment as JSON.
DUMP = "import json, os, sys; print(json.dumps({'argv': sys.argv[1:], 'env': dict(os.environ)}))"

AWKWARD = {
    "SINGLE": "it's",
    "DOUBLE": 'say "hi"',
    "SPACES": "  leading and trailing  ",
    "DOLLAR": "$HOME ${PATH} $1 $$",
    "SUBST": "$(touch pwned) `touch pwned2`",
    "NEWLINES": "line one\nline two\n\n",
    "BACKSLASH": "a\\b\\n\\",
    "GLOB": "* ? [a-z]",
    "SEMICOLON": "x; exit 3; &&|| > /tmp/nope",
    "EMPTY": "",
    "UNICODE": "grüße – ✓",
    "HASH": "# not a comment",
    "EQUALS": "a=b=c",
    "DATABASE_URL": "postgres://app:p%40ss'w\"d@db:5432/shop?sslmode=require",
}


def source_with_sh(env_file: Path, cwd: Path) -> dict:
    """Run the wrapper with /bin/sh against ``env_file``; return what the "entrypoint" saw."""
    process = subprocess.run(
        ["/bin/sh", "-c", WRAPPER, str(env_file), sys.executable, "-c", DUMP],
        capture_output=True, text=True, timeout=30, cwd=cwd, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout)


# -- env names ------------------------------------------------------------------------------------------------------


def test_valid_names_give_no_errors():
    assert env_errors({"A": 1, "_x": 2, "RAILS_ENV": 3, "a1_B2": 4}, "env") == []


@pytest.mark.parametrize("name", ["1ABC", "WITH-DASH", "WITH SPACE", "", "A.B", "A=B", "X$", "Ä"])
def test_invalid_names_are_named_in_the_error(name):
    errors = env_errors({"OK": 1, name: 2}, "secret_env")
    assert errors == [f"secret_env: {name!r} is not a valid environment variable name"]


# -- the app modules' parameters -------------------------------------------------------------------------------------


class Failed(Exception):
    pass


class FakeModule:
    """What checked_params uses of an AnsibleModule: its params, and fail_json (which raises)."""

    def __init__(self, **params):
        self.params = {"env": {}, "secret_env": {}, **params}

    def fail_json(self, msg, **_kwargs):
        raise Failed(msg)


def test_the_env_names_fail_first_then_the_modules_own_errors_in_one_message():
    module = FakeModule(env={"A-B": 1, "OK": 2}, secret_env={"": "x"})
    with pytest.raises(Failed) as failed:
        checked_params(module, ["timeout must be at least 1 second"])
    assert str(failed.value) == (
        "env: 'A-B' is not a valid environment variable name; secret_env: '' is not a valid environment variable "
        "name; timeout must be at least 1 second"
    )


def test_the_modules_own_errors_fail_alone():
    with pytest.raises(Failed, match=r"^keep_releases must be at least 1$"):
        checked_params(FakeModule(env={"OK": 1}), ["keep_releases must be at least 1"])


def test_checked_params_hold_the_environment_as_strings():
    module = FakeModule(env={"WORKERS": 2, "RAILS_ENV": "production"}, secret_env={"PIN": 1234}, image="shop")
    params = checked_params(module, [])
    assert params is module.params
    assert params["env"] == {"WORKERS": "2", "RAILS_ENV": "production"}
    assert params["secret_env"] == {"PIN": "1234"}
    assert params["image"] == "shop"


# -- the env file ---------------------------------------------------------------------------------------------------


def test_rendered_file_is_sorted_and_starts_with_a_comment():
    text = render_env_file({"B": "2", "A": "1"})
    lines = text.splitlines()
    assert lines[0].startswith("#")
    assert lines[1:] == ["A=1", "B=2"]
    assert text.endswith("\n")


def test_sourcing_the_rendered_file_gives_back_every_value_exactly(tmp_path: Path):
    env_file = tmp_path / "secrets.env"
    env_file.write_text(render_env_file(AWKWARD), encoding="utf-8")

    seen = source_with_sh(env_file, tmp_path)

    for name, value in AWKWARD.items():
        assert seen["env"][name] == value, name
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "pwned2").exists()


def test_non_string_values_are_rendered_as_text(tmp_path: Path):
    env_file = tmp_path / "secrets.env"
    env_file.write_text(render_env_file({"PORT": 5432, "FLAG": True}), encoding="utf-8")

    seen = source_with_sh(env_file, tmp_path)

    assert seen["env"]["PORT"] == "5432"
    assert seen["env"]["FLAG"] == "True"


def test_an_empty_secret_set_is_a_valid_file(tmp_path: Path):
    env_file = tmp_path / "secrets.env"
    env_file.write_text(render_env_file({}), encoding="utf-8")

    seen = source_with_sh(env_file, tmp_path)

    assert seen["argv"] == []


# -- private files --------------------------------------------------------------------------------------------------


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_private_file_writes_then_is_idempotent(tmp_path: Path):
    path = tmp_path / "secrets.env"

    assert write_private_file(str(path), "A=1\n") is True
    assert path.read_text() == "A=1\n"
    assert mode_of(path) == 0o444
    inode = os.stat(path).st_ino

    assert write_private_file(str(path), "A=1\n") is False
    assert os.stat(path).st_ino == inode  # not rewritten

    assert write_private_file(str(path), "A=2\n") is True
    assert path.read_text() == "A=2\n"
    assert mode_of(path) == 0o444
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.env"]  # no temp file left behind


def test_write_private_file_with_another_mode(tmp_path: Path):
    path = tmp_path / "backend.cfg"

    assert write_private_file(str(path), "x\n", mode=0o644) is True
    assert mode_of(path) == 0o644
    assert write_private_file(str(path), "x\n", mode=0o644) is False


def test_write_private_file_fixes_a_wrong_mode_even_with_the_same_content(tmp_path: Path):
    path = tmp_path / "secrets.env"
    path.write_text("A=1\n")
    path.chmod(0o666)

    assert write_private_file(str(path), "A=1\n") is True
    assert mode_of(path) == 0o444
    assert path.read_text() == "A=1\n"


def test_ensure_private_dir_creates_parents_and_tightens_the_mode(tmp_path: Path):
    path = tmp_path / "a" / "b"
    ensure_private_dir(str(path))
    assert mode_of(path) == 0o700

    path.chmod(0o755)
    ensure_private_dir(str(path))
    assert mode_of(path) == 0o700


# -- fingerprints ---------------------------------------------------------------------------------------------------

BASE = {
    "image_id": "sha256:aaa",
    "release": "42",
    "env": {"RAILS_ENV": "production"},
    "secret_env": {"SECRET_KEY_BASE": "s3cret"},
    "command": None,
    "container_port": 3000,
    "run_options": [],
}


def test_config_key_is_created_once_and_private(tmp_path: Path):
    key = config_key(str(tmp_path))
    assert len(key) >= 32
    assert mode_of(tmp_path / "fingerprint.key") == 0o600
    assert config_key(str(tmp_path)) == key


def test_fingerprint_is_stable_and_independent_of_key_order():
    key = b"k" * 32
    reordered = dict(reversed(list(BASE.items())))
    reordered["env"] = dict(reversed(list(BASE["env"].items())))
    assert fingerprint(key, BASE) == fingerprint(key, dict(BASE))
    assert fingerprint(key, BASE) == fingerprint(key, reordered)
    assert len(fingerprint(key, BASE)) == 32


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("image_id", "sha256:bbb"),
        ("release", "43"),
        ("env", {"RAILS_ENV": "staging"}),
        ("env", {"RAILS_ENV": "production", "EXTRA": "1"}),
        ("secret_env", {"SECRET_KEY_BASE": "s3cret2"}),
        ("command", ["bin/rails", "server"]),
        ("container_port", 3001),
        ("run_options", ["--memory", "512m"]),
    ],
)
def test_fingerprint_changes_with_each_input(field, value):
    key = b"k" * 32
    assert fingerprint(key, {**BASE, field: value}) != fingerprint(key, BASE)


def test_fingerprint_depends_on_the_key():
    assert fingerprint(b"a" * 32, BASE) != fingerprint(b"b" * 32, BASE)


def test_fingerprint_does_not_contain_the_secret():
    assert "s3cret" not in fingerprint(b"k" * 32, BASE)


# -- the image's command --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "command", "expected"),
    [
        ({"Entrypoint": ["bin/entry"], "Cmd": ["bin/rails", "server"]}, None, ["bin/entry", "bin/rails", "server"]),
        ({"Entrypoint": ["bin/entry"], "Cmd": ["bin/rails", "server"]}, ["bin/rails", "db:migrate"],
         ["bin/entry", "bin/rails", "db:migrate"]),
        ({"Entrypoint": ["bin/entry"], "Cmd": None}, None, ["bin/entry"]),
        ({"Entrypoint": None, "Cmd": ["bin/rails", "server"]}, None, ["bin/rails", "server"]),
        ({"Cmd": ["bin/rails", "server"]}, ["rake", "x"], ["rake", "x"]),
        ({}, ["rake", "x"], ["rake", "x"]),
        ({"Entrypoint": ["bin/entry"], "Cmd": ["server"]}, [], ["bin/entry", "server"]),  # empty list: image's CMD
    ],
)
def test_image_command(config, command, expected):
    assert image_command({"Id": "sha256:abc", "Config": config}, command) == expected


@pytest.mark.parametrize("info", [{"Id": "sha256:0123456789abcdef0123", "Config": {}},
                                  {"Id": "sha256:0123456789abcdef0123", "Config": None},
                                  {"Id": "sha256:0123456789abcdef0123"}])
def test_image_command_without_entrypoint_cmd_or_command_fails(info):
    with pytest.raises(DockerError, match=r"image sha256:0123456789ab has neither ENTRYPOINT nor CMD"):
        image_command(info)


# -- docker run arguments -------------------------------------------------------------------------------------------


def image_info(entrypoint, cmd):
    return {"Id": "sha256:abc", "Config": {"Entrypoint": entrypoint, "Cmd": cmd}}


def split_run_args(args: list[str]) -> tuple[list[str], str, list[str]]:
    """(docker options, image ref, what runs in the container) of ``docker run`` arguments."""
    assert args[0] == "run"
    at = args.index("--entrypoint")
    assert args[at + 1] == "/bin/sh"
    return args[1:at], args[at + 2], args[at + 3:]


def test_run_args_keep_secrets_out_of_the_docker_command(tmp_path: Path):
    args = run_args(
        name="shop-blue", image_ref="reg/shop:42", image_info=image_info(["bin/entry"], ["bin/rails", "server"]),
        env={"RAILS_ENV": "production", "A": "1"}, secrets_file="/var/lib/x/secrets/shop-blue.env",
        labels={"railsdeploy.release": "42"}, publish="127.0.0.1:3001:3000", restart="unless-stopped",
        stop_timeout=30, extra=["--memory", "512m"],
    )

    options, ref, inner = split_run_args(args)
    assert ref == "reg/shop:42"
    assert options[:3] == ["--detach", "--name", "shop-blue"]
    assert options[3:7] == ["--env", "A=1", "--env", "RAILS_ENV=production"]  # sorted
    for pair in (["--label", "railsdeploy.release=42"], ["--publish", "127.0.0.1:3001:3000"],
                 ["--restart", "unless-stopped"], ["--stop-timeout", "30"], ["--memory", "512m"]):
        at = options.index(pair[0])
        assert options[at: at + 2] == pair
    assert "--mount" in options
    assert options[options.index("--mount") + 1] == (
        f"type=bind,source=/var/lib/x/secrets/shop-blue.env,target={SECRETS_TARGET},readonly"
    )
    assert inner == ["-c", WRAPPER, SECRETS_TARGET, "bin/entry", "bin/rails", "server"]
    assert "--rm" not in options


def test_run_args_for_a_one_off_command():
    args = run_args(
        name="task", image_ref="reg/shop:42", image_info=image_info(["bin/entry"], ["bin/rails", "server"]),
        env={}, secrets_file="/s.env", command=["bin/rails", "db:migrate"], detach=False, remove=True,
    )

    options, _ref, inner = split_run_args(args)
    assert "--detach" not in options
    assert "--rm" in options
    assert "--env" not in options and "--label" not in options and "--publish" not in options
    assert inner[3:] == ["bin/entry", "bin/rails", "db:migrate"]


def test_run_args_fail_when_the_image_has_nothing_to_run():
    with pytest.raises(DockerError, match="neither ENTRYPOINT nor CMD"):
        run_args(name="x", image_ref="r:1", image_info=image_info(None, None), env={}, secrets_file="/s.env")


@pytest.mark.parametrize("with_cmd", [True, False])
def test_the_wrapper_exports_the_secrets_and_execs_the_entrypoint_and_cmd(tmp_path: Path, with_cmd: bool):
    """What the container runs, run here by /bin/sh with the secrets file at a temp path."""
    secrets = {"DATABASE_URL": AWKWARD["DATABASE_URL"], "SECRET_KEY_BASE": "s3cr$t 'key'\nline2"}
    secrets_file = tmp_path / "secrets.env"
    write_private_file(str(secrets_file), render_env_file(secrets))
    cmd = ["arg one", "$NOT_EXPANDED", "it's"] if with_cmd else None
    args = run_args(
        name="shop-blue", image_ref="reg/shop:42", image_info=image_info([sys.executable, "-c", DUMP], cmd),
        env={"RAILS_ENV": "production"}, secrets_file=str(secrets_file),
    )
    _options, _ref, inner = split_run_args(args)
    assert inner[2] == SECRETS_TARGET
    inner[2] = str(secrets_file)  # where docker's bind mount would put it

    process = subprocess.run(["/bin/sh", *inner], capture_output=True, text=True, timeout=30, cwd=tmp_path)

    assert process.returncode == 0, process.stderr
    seen = json.loads(process.stdout)
    assert seen["argv"] == (cmd or [])
    for name, value in secrets.items():
        assert seen["env"][name] == value
    for value in secrets.values():
        assert all(value not in arg for arg in args)


def test_the_wrapper_passes_the_exit_code_through(tmp_path: Path):
    secrets_file = tmp_path / "secrets.env"
    write_private_file(str(secrets_file), render_env_file({"CODE": "7"}))

    process = subprocess.run(["/bin/sh", "-c", WRAPPER, str(secrets_file), "/bin/sh", "-c", 'exit "$CODE"'],
                             capture_output=True, timeout=30)

    assert process.returncode == 7


def test_the_wrapper_fails_when_the_secrets_file_is_missing(tmp_path: Path):
    process = subprocess.run(["/bin/sh", "-c", WRAPPER, str(tmp_path / "missing.env"), "true"],
                             capture_output=True, timeout=30)

    assert process.returncode != 0


# -- the docker CLI wrapper -----------------------------------------------------------------------------------------


class Runner:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv):
        self.calls.append(argv)
        return self.answers.get(tuple(argv[1:]), (1, "", "Error: No such object"))


def test_docker_inspect_answers_none_when_missing():
    runner = Runner({("container", "inspect", "a"): (0, json.dumps([{"Id": "1"}]), "")})
    docker = Docker(runner, "/usr/bin/docker")

    assert docker.container("a") == {"Id": "1"}
    assert docker.container("b") is None
    assert docker.image("r:1") is None
    assert runner.calls[0][0] == "/usr/bin/docker"


def test_docker_call_failure_names_the_command():
    docker = Docker(Runner({}))
    with pytest.raises(DockerError, match=r"`docker stop --time 30 'my app'` failed \(rc 1\): Error: No such object"):
        docker.stop("my app", 30)


def test_docker_logs_keeps_the_tail_of_both_streams():
    runner = Runner({("logs", "--tail", "2", "c"): (0, "a\n\nb\n", "c\n")})
    assert Docker(runner).logs("c", tail=2) == ["b", "c"]
    assert Docker(runner).logs("missing") == []
