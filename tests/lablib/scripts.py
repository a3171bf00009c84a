"""Node-side scripts that roles install (roles/*/files/railsdeploy-*, Python without a .py suffix), as modules."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def load_script(role: str, name: str) -> ModuleType:
    """roles/<role>/files/<name>, imported as a module named like the script (dashes as underscores)."""
    module_name = name.replace("-", "_")
    loader = importlib.machinery.SourceFileLoader(module_name, str(REPO / "roles" / role / "files" / name))
    spec = importlib.util.spec_from_loader(module_name, loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module
