"""The admin list check run before any host (module_utils/_admin_list.py, and the module admin_list_info as the
admin_users role runs it).

The key checks are also compared with OpenSSH itself (``ssh-keygen -l``) when it is installed: a key the
filter accepts must be one OpenSSH reads, and a mangled key the filter refuses must be one it refuses.
"""

from __future__ import annotations

import base64
import json
import shutil
import struct
import subprocess

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.railsdeploy.aws.plugins.module_utils import _admin_list as check
from ansible_collections.railsdeploy.aws.plugins.modules import admin_list_info

# Public halves of throw-away keys made with ssh-keygen for these tests.
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINCxattxRkqHSZLVf7HuZXZx+1aTgEYbHaLm3/UjvLHq alice@laptop"
ED25519_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL2gIsOH6B3998ztdAU+BSnG5ygmOplf2nMQISNSq75g bob@laptop"
RSA_3072 = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCKHDuqWFp4kjmLOy4vE15QT+dLryd5ICzxLkH6NiGVvwuXu0f4BZx04pNu3Xk0J8zRODY/"
    "DbMJYkBoc0n0RMQDjWa6zKNafWya1V3pCvuhXZIwmNdeaF3Z7NoQeNMSzwHNIIxMRJakMO7mD6x6b2VYgG3MeC/00wvhY7DI09ty7nN+fZfXO2"
    "lvOWUqjHKNS7mAn7AcHsrzTA6tPtZEpWluA3soramaVmGg0dWXpO0fgKChZ/8CSdOb7bxf3CcJY/pKxQbm2Om7EkOBJfjW/btL2IBsP9CUWvg8"
    "piUai44XfyzoSKPgISnUgM8pWrIMw0lRdzG4q45prpz1pyeHBHJ3sRPxPcVZP2rMecZ6Y1NFHQ9rAw/3gSXkQZPZ6CJjO+QLTbKFxri7+j6XpG"
    "fFsE0imeqTHBZDSG2zn2GAg2k84ogXSnU7UvegM9RpCu9dcdA5dCUe6FcmDR05fqQ3JCLr0cEBe+jWnbZRJKRbFt6naWGMbM6nbL7rRy+rDsM3"
    "0g8= carol rsa key"
)
RSA_1024 = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCkgGDpwrdHFduGWBbbq526+qCx5maSC6o661KlBXGF7S9pG0XOsT0k+oOvXhCHbcF3bkVSN7K"
    "1gFzxKtu9qcZZ0sUGkS/S5+N++rMJCyDTgwE8OAmK5t2jSFVC2aFUq+d/4JGSCB7mFAz5en0DWpjv4SdukL7fkXEkC/5BiB46YQ== old"
)
ECDSA_256 = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAglDY6s+SFi/eYusXoQSnKdGmVElBe5qgsLOv"
    "KHUxVwlwtnpwJYq9oAsLmNB3KnkH3x1M1kgCFtxmR4iMqM/jY= dave"
)
ECDSA_384 = (
    "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBPVkcaaK6wiDO3JSfcUS/2FI3yOHvvb4GkcguQ"
    "DRV6lzBJVUbRGREywUTkMlWq/ta75seIJprY2MdwGZr35Lu3MBfOKX5mB7q5D/HqcGswkU3kXdkmPZpH/jovJ7j/9bYA=="
)
ECDSA_521 = (
    "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBACLN84Wx5QovIc+udQa/b+Ahg8UlAQ/HODGs1"
    "5iLslI2PqPJ7GPdb1oqGoUJb5fJEvYhX8+dxWC8YckS4whjMlImwBo80EFpyAkitIYJ2Gh7Mh48FOA3FmErGQRZ/gp0XD24NLkPjH/1TnK/LOa"
    "NVoto0sEI/INRMdBhDaWzmYKoQd4aA== erin"
)


def _blob(*fields: bytes) -> str:
    return base64.b64encode(b"".join(struct.pack(">I", len(f)) + f for f in fields)).decode()


ED_BODY = ED25519.split()[1]
MANGLED = {
    "truncated body": "ssh-ed25519 " + ED_BODY[:-8],
    "not base64": "ssh-ed25519 AAAA!!!!not-base64",
    "type mismatch": "ssh-rsa " + ED_BODY,
    "short ed25519": "ssh-ed25519 " + _blob(b"ssh-ed25519", b"\x01" * 16),
    "trailing bytes": "ssh-ed25519 " + _blob(b"ssh-ed25519", b"\x01" * 32, b"extra"),
    "wrong curve": "ecdsa-sha2-nistp256 " + ECDSA_384.split()[1],
    "no body": "ssh-ed25519",
}
REFUSED_BY_POLICY = {
    "unknown type": "ssh-foo AAAA",
    "dsa": "ssh-dss " + _blob(b"ssh-dss", b"p", b"q", b"g", b"y"),
    "options in front": 'from="10.0.0.0/8" ' + ED25519,
    "private key": "-----BEGIN OPENSSH PRIVATE KEY-----",
    "two lines": ED25519 + "\n" + ED25519_B,
    "empty": "  ",
    "not a string": 42,
    "1024-bit rsa": RSA_1024,
    "two keys on one line": ED25519 + " " + ED25519_B,
}


@pytest.mark.parametrize("key", [ED25519, ED25519_B, RSA_3072, ECDSA_256, ECDSA_384, ECDSA_521])
def test_real_keys_are_accepted(key):
    key_type, blob = check.parse_public_key(key)
    assert key_type == key.split()[0]
    assert blob == base64.b64decode(key.split()[1])


def test_sk_keys_are_accepted():
    key = "sk-ssh-ed25519@openssh.com " + _blob(b"sk-ssh-ed25519@openssh.com", b"\x02" * 32, b"ssh:")
    assert check.parse_public_key(key)[0] == "sk-ssh-ed25519@openssh.com"


@pytest.mark.parametrize("case", sorted(MANGLED) + sorted(REFUSED_BY_POLICY))
def test_broken_or_refused_keys_are_refused(case):
    key = MANGLED.get(case, REFUSED_BY_POLICY.get(case))
    with pytest.raises(check.KeyProblem):
        check.parse_public_key(key)


def test_rsa_minimum_is_configurable():
    assert check.parse_public_key(RSA_1024, min_rsa_bits=1024)[0] == "ssh-rsa"
    with pytest.raises(check.KeyProblem, match="1024-bit RSA key; at least 2048"):
        check.parse_public_key(RSA_1024)


needs_ssh_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed")


def _ssh_keygen_reads(tmp_path, key: str) -> bool:
    path = tmp_path / "key.pub"
    path.write_text(key + "\n")
    return subprocess.run(["ssh-keygen", "-l", "-f", str(path)], capture_output=True).returncode == 0


@needs_ssh_keygen
@pytest.mark.parametrize("key", [ED25519, RSA_3072, ECDSA_256, ECDSA_521])
def test_openssh_reads_what_the_filter_accepts(tmp_path, key):
    assert _ssh_keygen_reads(tmp_path, key)


@needs_ssh_keygen
@pytest.mark.parametrize("case", sorted(MANGLED))
def test_openssh_refuses_what_the_filter_calls_mangled(tmp_path, case):
    assert not _ssh_keygen_reads(tmp_path, MANGLED[case])


# --- the admin list ----------------------------------------------------------------------------------


def _admin(name="alice", **kw):
    entry = {"name": name, "ssh_keys": [ED25519], "sudo": "passwordless", "state": "present"}
    entry.update(kw)
    return entry


def test_a_valid_list_has_no_problems():
    admins = [
        _admin(),
        _admin("bob", ssh_keys=[ED25519_B, RSA_3072], sudo="password"),
        {"name": "carol", "ssh_keys": ECDSA_256},  # a single key as a string; sudo and state defaulted
        {"name": "dave", "state": "absent"},  # an absent admin needs no key
    ]
    assert check.admin_users_problems(admins, ["root", "admin"]) == []


def test_an_empty_list_is_valid_but_a_missing_one_is_not():
    assert check.admin_users_problems([]) == []
    (problem,) = check.admin_users_problems(None)
    assert "railsdeploy_admins is not set" in problem and "admins.yml" in problem


@pytest.mark.parametrize(
    ("admins", "expected"),
    [
        ([_admin(ssh_keys=[])], "admin 'alice' (entry 1): field 'ssh_keys' is missing or empty"),
        ([{"name": "alice", "sudo": "none"}], "admin 'alice' (entry 1): field 'ssh_keys' is missing or empty"),
        ([_admin(ssh_keys=[MANGLED["truncated body"]])], "admin 'alice' (entry 1): field 'ssh_keys' item 1 "),
        ([_admin(ssh_keys="not a key")], "admin 'alice' (entry 1): field 'ssh_keys' item 1 has unknown key type"),
        ([_admin(ssh_keys={"a": 1})], "field 'ssh_keys' must be a list"),
        ([_admin(), _admin(ssh_keys=[ED25519_B])], "admin 'alice' (entry 2): field 'name' duplicates entry 1"),
        ([_admin(sudo="sometimes")], "admin 'alice' (entry 1): field 'sudo' is 'sometimes'; expected one of"),
        ([_admin(sudo=True)], "field 'sudo' is True"),
        ([_admin(state="gone")], "field 'state' is 'gone'; expected one of present, absent"),
        ([_admin("Alice")], "admin 'Alice' (entry 1): field 'name' is not a valid login name"),
        ([_admin("al.ice")], "field 'name' is not a valid login name"),
        ([_admin("a" * 33)], "field 'name' is not a valid login name"),
        ([_admin("root")], "admin 'root' (entry 1): field 'name' 'root' is reserved"),
        ([_admin("admin")], "admin 'admin' (entry 1): field 'name' 'admin' is reserved"),
        ([_admin(name="")], "admin entry 1: field 'name' is missing or empty"),
        ([{"ssh_keys": [ED25519]}], "admin entry 1: field 'name' is missing or empty"),
        ([_admin(sudoers="x")], "admin 'alice' (entry 1): unknown field(s) sudoers"),
        ([_admin(docker="yes")], "admin 'alice' (entry 1): field 'docker' is 'yes'; expected true or false"),
        (["alice"], "admin entry 1: must be a mapping"),
        ({"alice": {}}, "railsdeploy_admins must be a list"),
        ([_admin(), _admin("bob")], "admin 'bob' (entry 2): field 'ssh_keys' item 1 is also a key of admin 'alice'"),
    ],
)
def test_each_problem_names_the_admin_and_the_field(admins, expected):
    problems = check.admin_users_problems(admins, ["root", "admin"])
    assert any(expected in p for p in problems), problems


def test_every_problem_is_reported_at_once():
    admins = [_admin(ssh_keys=[]), _admin("bob", sudo="maybe", ssh_keys=[ED25519_B]), _admin("bob")]
    problems = check.admin_users_problems(admins)
    assert len(problems) == 3, problems


def test_an_absent_admin_may_share_a_key_with_a_present_one():
    admins = [_admin("alice"), _admin("olduser", state="absent")]
    assert check.admin_users_problems(admins) == []


def test_normalize_fills_defaults_and_strips_keys():
    admins = [
        {"name": "carol", "ssh_keys": "  " + ECDSA_256 + "\n"},
        {"name": "dave", "state": "absent", "ssh_keys": {"ignored": "for an absent admin"}},
    ]
    assert check.admin_users_normalize(admins) == [
        {"name": "carol", "ssh_keys": [ECDSA_256], "sudo": "none", "state": "present", "docker": False},
        {"name": "dave", "ssh_keys": [], "sudo": "none", "state": "absent", "docker": False},
    ]


@pytest.mark.parametrize(
    ("sudo", "docker", "joins_docker"),
    [("none", False, False), ("none", True, True), ("password", False, True), ("passwordless", False, True)],
)
def test_docker_access_root_equivalent_needs_sudo_or_the_explicit_field(sudo, docker, joins_docker):
    [admin] = check.admin_users_normalize([_admin(sudo=sudo, docker=docker)])
    assert admin["docker"] is joins_docker


# --- settings written into sshd and sudoers files ----------------------------------------------------

FIXED = {"PasswordAuthentication": "no", "KbdInteractiveAuthentication": "no", "PermitRootLogin": "no"}


def test_default_like_settings_have_no_problems():
    assert (
        check.admin_users_settings_problems({"AuthorizedKeysFile": ".ssh/authorized_keys"}, ["!lecture"], FIXED) == []
    )


@pytest.mark.parametrize(
    ("sshd_options", "sudo_defaults", "expected"),
    [
        ({"permitrootlogin": "yes"}, [], "permitrootlogin is always set by this role"),
        ({"ChallengeResponseAuthentication": "yes"}, [], "ChallengeResponseAuthentication is always set"),
        ({"Foo Bar": "x"}, [], "is not an sshd directive name"),
        ({"Banner": "none\nPermitRootLogin yes"}, [], "the value of Banner must be one line"),
        ({"Banner": ["a"]}, [], "the value of Banner must be one line"),
        (["PermitRootLogin no"], [], "admin_users_sshd_options must be a mapping"),
        ({}, "!lecture", "admin_users_sudo_defaults must be a list"),
        ({}, ["!lecture\nALL ALL=(ALL) NOPASSWD: ALL"], "admin_users_sudo_defaults item 1 must be one non-empty line"),
        ({}, [""], "admin_users_sudo_defaults item 1"),
    ],
)
def test_settings_that_would_inject_or_weaken_are_refused(sshd_options, sudo_defaults, expected):
    problems = check.admin_users_settings_problems(sshd_options, sudo_defaults, FIXED)
    assert any(expected in p for p in problems), problems


def test_an_unknown_but_well_formed_directive_is_left_to_sshd():
    # sshd -t on the node refuses it before the drop-in is written; the molecule scenario proves that.
    assert check.admin_users_settings_problems({"NoSuchDirective": "yes"}, [], FIXED) == []


# --- the module as the role runs it ------------------------------------------------------------------


def _run(args: dict, capsys) -> dict:
    with patch_module_args(args), pytest.raises(SystemExit):
        admin_list_info.main()
    return json.loads(capsys.readouterr().out)


def test_module_returns_the_normalised_list_when_valid(capsys):
    answer = _run({"admins": [{"name": "carol", "ssh_keys": ECDSA_256}], "reserved": ["root"], "sshd_options": {}},
                  capsys)
    assert answer["changed"] is False and answer["problems"] == []
    assert answer["admins"] == [
        {"name": "carol", "ssh_keys": [ECDSA_256], "sudo": "none", "state": "present", "docker": False}]


def test_module_returns_every_problem_and_no_admins_when_invalid(capsys):
    answer = _run(
        {
            "admins": [_admin(sudo="maybe"), _admin()],
            "reserved": [],
            "sshd_options": {"PermitRootLogin": "yes"},
            "fixed_sshd_options": FIXED,
        },
        capsys,
    )
    assert answer["admins"] == []
    assert len(answer["problems"]) == 3, answer["problems"]


def test_module_calls_an_unset_list_a_problem(capsys):
    answer = _run({"reserved": ["root"]}, capsys)
    assert answer["admins"] == [] and len(answer["problems"]) == 1, answer
    assert "railsdeploy_admins" in answer["problems"][0]


def test_module_reads_the_login_key_files_public_key(capsys, key_pair):
    path, public = key_pair
    files = {"rails2001": path}
    assert _run({"admins": [], "login_keys": [public], "login_key_files": files}, capsys)["problems"] == []
    [problem] = _run({"admins": [], "login_keys": [ED25519], "login_key_files": files}, capsys)["problems"]
    assert "lacks the key Ansible logs in with" in problem and path in problem


# --- the keys of Ansible's login user (railsdeploy_deployer_keys) ---------------------------------------------


def _public_key_of(path: str) -> tuple[int, str, str]:
    done = subprocess.run(["ssh-keygen", "-y", "-f", path], capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def key_pair(tmp_path):
    """A private key file (as ansible_ssh_private_key_file names one) and its public key line."""
    path = tmp_path / "deployer"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return str(path), (tmp_path / "deployer.pub").read_text().strip()


def test_no_deployer_keys_leave_the_login_user_alone():
    assert check.login_keys_problems([], {}, _public_key_of) == []


def test_deployer_keys_that_hold_ansibles_own_key_pass(key_pair):
    path, public = key_pair
    assert check.login_keys_problems([public, ED25519], {"rails2001": path, "rails2002": path}, _public_key_of) == []


def test_deployer_keys_without_ansibles_own_key_are_refused_naming_the_file(key_pair):
    path, _public = key_pair
    [problem] = check.login_keys_problems([ED25519], {"rails2001": path, "rails2002": path}, _public_key_of)
    assert "lacks the key Ansible logs in with" in problem and path in problem


def test_one_key_file_named_two_ways_is_one_problem(key_pair, tmp_path):
    path, _public = key_pair
    other_way = str(tmp_path / ".." / tmp_path.name / "deployer")
    assert len(check.login_keys_problems([ED25519], {"localhost": path, "rails2001": other_way}, _public_key_of)) == 1


def test_deployer_keys_need_a_key_file_to_prove_ansibles_login():
    [problem] = check.login_keys_problems([ED25519], {}, _public_key_of)
    assert "no host sets ansible_ssh_private_key_file: set it" in problem


def test_a_bad_deployer_key_is_named(key_pair):
    path, _public = key_pair
    [problem] = check.login_keys_problems(["ssh-ed25519 AAAA-broken"], {"rails2001": path}, _public_key_of)
    assert problem.startswith("railsdeploy_deployer_keys (admin_users_login_keys) item 1 ")
