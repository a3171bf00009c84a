# Copyright: railsdeploy.aws contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a string is a PostgreSQL identifier the collection may use unquoted."""

from __future__ import annotations

import re

DOCUMENTATION = r"""
name: postgres_identifier
version_added: 0.1.0
short_description: Whether a string is a PostgreSQL identifier usable unquoted
description:
  - True for a lower-case name PostgreSQL takes unquoted - a letter or V(_), then letters, digits or V(_), at most 63
    (its C(NAMEDATALEN) - 1) - as the app's role and database are named (C(railsdeploy_postgres_user),
    C(railsdeploy_postgres_db)); anything else would need quoting in every statement that names it.
extends_documentation_fragment:
  - railsdeploy.aws.string_test
"""

EXAMPLES = r"""
- name: The app's role is a plain identifier
  ansible.builtin.assert:
    that: railsdeploy_postgres_user is railsdeploy.aws.postgres_identifier
"""

RETURN = r"""
_value:
  description: Whether the input is a PostgreSQL identifier usable unquoted.
  type: bool
"""

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def postgres_identifier(value) -> bool:
    return isinstance(value, str) and _IDENTIFIER.fullmatch(value) is not None


class TestModule:
    def tests(self):
        return {"postgres_identifier": postgres_identifier}
