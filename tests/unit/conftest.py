"""Make the repo checkout importable as ``ansible_collections.railsdeploy.aws``.

The repo root is the collection root, but Python can only import it from a directory laid out as
``<dir>/ansible_collections/railsdeploy/aws``. When this conftest is loaded (before any test module is
collected) it creates ``build/collections/ansible_collections/railsdeploy/aws`` as a symlink to the repo root
(``build/`` is ignored by git, by ``ansible-galaxy collection build``, ruff, ansible-lint and pytest's
recursion) and puts ``build/collections`` first on ``sys.path``. ``ansible_collections`` is a namespace
package, so the installed collections in site-packages (amazon.aws, ...) stay importable beside it.

Idempotent: an existing correct link is kept, a stale one (e.g. from a checkout that moved) is replaced
atomically. When the checkout already sits in such a layout (``ansible-test units`` copies the collection
to ``.../ansible_collections/railsdeploy/aws``), that layout is used and nothing is created.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS_DIR = REPO_ROOT / "build" / "collections"


def collections_root() -> Path:
    """Directory holding ``ansible_collections/railsdeploy/aws`` for this checkout."""
    parts = REPO_ROOT.parts
    if len(parts) >= 4 and parts[-3:] == ("ansible_collections", "railsdeploy", "aws"):
        return REPO_ROOT.parents[2]
    link = COLLECTIONS_DIR / "ansible_collections" / "railsdeploy" / "aws"
    if link.is_symlink() and link.resolve() == REPO_ROOT:
        return COLLECTIONS_DIR
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".aws.{os.getpid()}")
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(REPO_ROOT, target_is_directory=True)
    os.replace(tmp, link)  # atomic: a concurrent session never sees the link missing
    return COLLECTIONS_DIR


_ROOT = str(collections_root())
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
