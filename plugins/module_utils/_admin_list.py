# Copyright: railsdeploy.aws developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Checks and normalises the admin list of the admin_users role (module admin_list_info, on the controller).

Every problem at once (one message per problem, naming the admin and the field), so an operator fixes admins.yml in
one go, and the list with its defaults filled in.

SSH public keys are checked by decoding them, as ``ssh-keygen -l`` does: the key type is one OpenSSH
accepts, the base64 body decodes, the type inside the body matches the one in front, and the body holds
exactly the fields of that type (an RSA modulus of at least ``min_rsa_bits``, a 32-byte Ed25519 key, an
ECDSA point of its curve's size). A truncated copy-paste, a private key, a PuTTY export or a key with
``authorized_keys`` options in front is refused with what is wrong.

Private to this collection (leading underscore): no compatibility promise to other collections. Nothing here runs a
command: the public key of a private key file comes from the caller (login_keys_problems' ``public_key_of``).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
from collections.abc import Callable
from typing import Any

FIELDS = ("name", "ssh_keys", "sudo", "state", "docker")
SUDO_VALUES = ("passwordless", "password", "none")
STATE_VALUES = ("present", "absent")
DEFAULTS = {"sudo": "none", "state": "present", "docker": False}

# Login names every distribution accepts: lower case, starting with a letter, at most 32 characters.
# No dot: sudo ignores files in /etc/sudoers.d whose name contains one (railsdeploy-<name>).
NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
SSHD_DIRECTIVE_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*")

ECDSA_POINT_BYTES = {"nistp256": 65, "nistp384": 97, "nistp521": 133}
# key type -> layout of the decoded body after the type string
KEY_LAYOUTS = {
    "ssh-ed25519": ("ed25519",),
    "sk-ssh-ed25519@openssh.com": ("ed25519", "string"),
    "ssh-rsa": ("mpint", "mpint"),
    "ecdsa-sha2-nistp256": ("curve", "point"),
    "ecdsa-sha2-nistp384": ("curve", "point"),
    "ecdsa-sha2-nistp521": ("curve", "point"),
    "sk-ecdsa-sha2-nistp256@openssh.com": ("curve", "point", "string"),
}
REFUSED_TYPES = {
    "ssh-dss": "DSA keys are disabled in OpenSSH; generate an Ed25519 key (ssh-keygen -t ed25519)",
}


class KeyProblem(ValueError):
    """A public key line that is not usable in authorized_keys."""


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise KeyProblem("its body is truncated")
    (length,) = struct.unpack(">I", blob[offset : offset + 4])
    start, end = offset + 4, offset + 4 + length
    if end > len(blob):
        raise KeyProblem("its body is truncated")
    return blob[start:end], end


def parse_public_key(line: Any, min_rsa_bits: int = 2048) -> tuple[str, bytes]:
    """Return ``(key type, decoded body)`` of an OpenSSH public key line, or raise ``KeyProblem``.

    Accepted: ``<type> <base64 body> [comment]`` on one line.
    """
    if not isinstance(line, str):
        raise KeyProblem(f"is a {type(line).__name__}, not a string")
    text = line.strip()
    if not text:
        raise KeyProblem("is empty")
    if "\n" in text or "\r" in text:
        raise KeyProblem("spans several lines: give each key as its own list item, on one line")
    if text.startswith("-----BEGIN") or text.startswith("---- BEGIN"):
        raise KeyProblem(
            "is a PEM/PuTTY block, not an OpenSSH public key: give the one-line .pub file "
            "(ssh-keygen -y -f <private key>, or ssh-keygen -i -f <putty.pub>)"
        )
    fields = text.split(None, 2)
    key_type = fields[0]
    if key_type in REFUSED_TYPES:
        raise KeyProblem(f"has type {key_type}: {REFUSED_TYPES[key_type]}")
    if key_type not in KEY_LAYOUTS:
        if any(key_type.startswith(prefix) for prefix in ("from=", "command=", "no-", "restrict", "environment=")):
            raise KeyProblem("starts with authorized_keys options; give the bare key '<type> <base64> [comment]'")
        raise KeyProblem(
            f"has unknown key type {key_type[:40]!r}: expected one of {', '.join(sorted(KEY_LAYOUTS))} "
            "followed by the base64 body"
        )
    if len(fields) < 2:
        raise KeyProblem(f"has no base64 body after {key_type}")
    body = fields[1]
    if len(fields) > 2 and any(word in KEY_LAYOUTS for word in fields[2].split()):
        raise KeyProblem("holds two keys on one line: give each key as its own list item")
    try:
        blob = base64.b64decode(body.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise KeyProblem("has a base64 body that does not decode (truncated or mangled copy?)") from None
    _check_body(key_type, blob, min_rsa_bits)
    return key_type, blob


def _check_body(key_type: str, blob: bytes, min_rsa_bits: int) -> None:
    inner, offset = _read_string(blob, 0)
    if inner != key_type.encode():
        raise KeyProblem(
            f"says {key_type} but its body holds a {inner.decode('ascii', 'replace')[:40]!r} key (mixed-up paste?)"
        )
    curve = key_type.rsplit("-", 1)[-1].split("@", 1)[0]
    values = []
    for part in KEY_LAYOUTS[key_type]:
        value, offset = _read_string(blob, offset)
        values.append(value)
        if part == "ed25519" and len(value) != 32:
            raise KeyProblem(f"has an Ed25519 key of {len(value)} bytes instead of 32 (truncated?)")
        if part == "mpint" and not value:
            raise KeyProblem("has an empty RSA number (truncated?)")
        if part == "curve" and value != curve.encode():
            raise KeyProblem(f"names curve {value.decode('ascii', 'replace')[:20]!r} instead of {curve}")
        if part == "point" and (len(value) != ECDSA_POINT_BYTES[curve] or value[:1] != b"\x04"):
            raise KeyProblem(f"has an invalid {curve} point (truncated?)")
    if offset != len(blob):
        raise KeyProblem("has trailing bytes after the key (two keys pasted together?)")
    if key_type == "ssh-rsa":
        bits = int.from_bytes(values[1], "big").bit_length()
        if bits < min_rsa_bits:
            raise KeyProblem(
                f"is a {bits}-bit RSA key; at least {min_rsa_bits} bits are required (better: ssh-keygen -t ed25519)"
            )


def _entry_label(index: int, admin: Any) -> str:
    name = admin.get("name") if isinstance(admin, dict) else None
    if isinstance(name, str) and name:
        return f"admin {name!r} (entry {index + 1})"
    return f"admin entry {index + 1}"


def _keys_of(admin: dict) -> Any:
    keys = admin.get("ssh_keys")
    return [keys] if isinstance(keys, str) else keys


def admin_users_problems(
    admins: Any,
    reserved: Any = (),
    min_rsa_bits: int = 2048,
    var_name: str = "railsdeploy_admins",
) -> list[str]:
    """Every problem of the admin list, as messages naming the admin and the field. Empty when valid."""
    if admins is None:
        return [
            f"{var_name} is not set: define it in inventories/<env>/group_vars/all/admins.yml "
            "(a list of admins; [] means no admins, and removes every admin this role created)"
        ]
    if not isinstance(admins, list):
        return [f"{var_name} must be a list of admins, got a {type(admins).__name__}"]
    reserved_names = {str(r) for r in (reserved or ()) if r}
    problems: list[str] = []
    first_index: dict[str, int] = {}
    key_owner: dict[bytes, str] = {}
    for index, admin in enumerate(admins):
        label = _entry_label(index, admin)
        if not isinstance(admin, dict):
            problems.append(f"{label}: must be a mapping with name, ssh_keys, sudo, state, docker; got {admin!r:.60}")
            continue
        unknown = sorted(str(k) for k in admin if k not in FIELDS)
        if unknown:
            problems.append(f"{label}: unknown field(s) {', '.join(unknown)}; the fields are {', '.join(FIELDS)}")
        name = admin.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{label}: field 'name' is missing or empty")
        elif not NAME_RE.fullmatch(name):
            problems.append(
                f"{label}: field 'name' is not a valid login name: use 1-32 characters a-z, 0-9, '_' or '-', "
                "starting with a letter"
            )
        elif name in reserved_names:
            problems.append(
                f"{label}: field 'name' {name!r} is reserved (root, the AMI's login user that Ansible connects "
                "as, or a system account; see admin_users_reserved_names): choose another name"
            )
        elif name in first_index:
            problems.append(f"{label}: field 'name' duplicates entry {first_index[name] + 1}; list each admin once")
            continue  # its other fields would only repeat the first entry's problems
        else:
            first_index[name] = index
        state = admin.get("state", DEFAULTS["state"])
        if state not in STATE_VALUES:
            problems.append(f"{label}: field 'state' is {state!r}; expected one of {', '.join(STATE_VALUES)}")
        sudo = admin.get("sudo", DEFAULTS["sudo"])
        if sudo not in SUDO_VALUES:
            problems.append(f"{label}: field 'sudo' is {sudo!r}; expected one of {', '.join(SUDO_VALUES)}")
        docker = admin.get("docker", DEFAULTS["docker"])
        if not isinstance(docker, bool):
            problems.append(f"{label}: field 'docker' is {docker!r}; expected true or false (true gives Docker access,"
                            " which is root on the node)")
        if state == "absent":
            continue  # an absent admin's keys are removed with the account, whatever they are
        keys = _keys_of(admin)
        if keys is None or keys == []:
            problems.append(f"{label}: field 'ssh_keys' is missing or empty; a present admin needs at least one key")
            continue
        if not isinstance(keys, list):
            problems.append(f"{label}: field 'ssh_keys' must be a list of public keys, got a {type(keys).__name__}")
            continue
        for key_index, key in enumerate(keys):
            try:
                _type, blob = parse_public_key(key, min_rsa_bits)
            except KeyProblem as exc:
                problems.append(f"{label}: field 'ssh_keys' item {key_index + 1} {exc}")
                continue
            owner = key_owner.setdefault(blob, label)
            if owner != label:
                problems.append(
                    f"{label}: field 'ssh_keys' item {key_index + 1} is also a key of {owner}; each admin needs "
                    "their own key (a shared key would outlive the removal of one of them)"
                )
    return problems


def admin_users_settings_problems(
    sshd_options: Any,
    sudo_defaults: Any,
    fixed_sshd_options: Any = (),
) -> list[str]:
    """Problems of the role settings that end up in sshd and sudoers files, as messages naming the variable.

    Only the shape is checked here (one directive per key, one line per value); whether sshd and sudo
    accept the values is checked on the node by ``sshd -t`` and ``visudo -c`` before a file is written.
    """
    problems: list[str] = []
    fixed = {str(k).lower() for k in (fixed_sshd_options or ())}
    fixed.add("challengeresponseauthentication")  # the old name of KbdInteractiveAuthentication
    if not isinstance(sshd_options, dict):
        problems.append(
            f"admin_users_sshd_options must be a mapping of sshd directives to values, got {sshd_options!r:.60}"
        )
    else:
        for key, value in sshd_options.items():
            if not isinstance(key, str) or not SSHD_DIRECTIVE_RE.fullmatch(key):
                problems.append(f"admin_users_sshd_options: {key!r:.40} is not an sshd directive name (letters only)")
            elif key.lower() in fixed:
                problems.append(
                    f"admin_users_sshd_options: {key} is always set by this role (passwords and root login stay "
                    "refused); remove it"
                )
            if isinstance(value, (dict, list)) or value is None or "\n" in str(value) or "\r" in str(value):
                problems.append(f"admin_users_sshd_options: the value of {key} must be one line of text")
    if not isinstance(sudo_defaults, list):
        problems.append(
            f"admin_users_sudo_defaults must be a list of sudoers Defaults options, got {sudo_defaults!r:.60}"
        )
    else:
        for index, option in enumerate(sudo_defaults):
            if not isinstance(option, str) or not option.strip() or "\n" in option or "\r" in option:
                problems.append(f"admin_users_sudo_defaults item {index + 1} must be one non-empty line of text")
    return problems


def login_keys_problems(
    login_keys: Any,
    key_files: dict[str, str],
    public_key_of: Callable[[str], tuple[int, str, str]],
    min_rsa_bits: int = 2048,
) -> list[str]:
    """Problems of admin_users_login_keys (railsdeploy_deployer_keys), the exact keys of Ansible's login user: each
    a valid key, and the key of every host's ansible_ssh_private_key_file among them - else Ansible's next login to
    that host would fail, and nothing could repair it. ``public_key_of(path)``: the (rc, stdout, stderr) of
    ``ssh-keygen -y -f path``."""
    name = "railsdeploy_deployer_keys (admin_users_login_keys)"
    if login_keys in (None, [], ""):
        return []
    if not isinstance(login_keys, list):
        return [f"{name} must be a list of public keys, got a {type(login_keys).__name__}"]
    problems, listed = [], set()
    for index, key in enumerate(login_keys):
        try:
            listed.add(parse_public_key(key, min_rsa_bits)[1])
        except KeyProblem as exc:
            problems.append(f"{name} item {index + 1} {exc}")
    if problems:
        return problems
    if not key_files:
        return [f"{name} replaces the keys of Ansible's login user, but no host sets ansible_ssh_private_key_file: "
                "set it, so that the run can prove Ansible's own key stays (an SSH agent's key cannot be checked)"]
    for path in sorted({os.path.realpath(p) for p in key_files.values()}):
        rc, out, err = public_key_of(path)
        if rc != 0:
            problems.append(f"cannot read the public key of {path} (an ansible_ssh_private_key_file): "
                            f"{err.strip()[:200]}")
            continue
        if parse_public_key(out.strip(), min_rsa_bits)[1] not in listed:
            problems.append(f"{name} lacks the key Ansible logs in with ({path}): the run would lock Ansible out. "
                            f"Add its public key (ssh-keygen -y -f {path}).")
    return problems


def admin_users_normalize(admins: list[dict]) -> list[dict]:
    """The admin list with defaults filled in: every entry has name, ssh_keys (a list), sudo, state and docker
    (whether the admin joins the docker group)."""
    result = []
    for admin in admins or []:
        keys = _keys_of(admin) or []
        result.append(
            {
                "name": admin["name"],
                "ssh_keys": [k.strip() for k in keys] if admin.get("state", DEFAULTS["state"]) == "present" else [],
                "sudo": admin.get("sudo", DEFAULTS["sudo"]),
                "state": admin.get("state", DEFAULTS["state"]),
                # Docker's socket is root: admins who may sudo have it, others only when their entry says so.
                "docker": admin.get("sudo", DEFAULTS["sudo"]) != "none" or admin.get("docker", DEFAULTS["docker"]),
            }
        )
    return result
