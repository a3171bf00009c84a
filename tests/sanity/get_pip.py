"""Stand-in for the get-pip.py that ansible-test downloads to put pip into its sanity virtualenvs.

ansible-test creates every sanity test's virtualenv without pip and bootstraps pip by running
``~/.ansible/test/cache/get_pip_<version>.py``, which it downloads from ci-files.testing.ansible.com when
the file is missing. That host is not reachable from the machines this project runs on (PyPI is), so
tests/sanity/run.sh copies this file to that cache path first. It does what get-pip.py does: run pip from a
wheel on sys.path to install the requested pip into the running interpreter. The wheel is the one bundled
with Python's ensurepip (or Debian's python3-pip-whl); the pip it installs comes from the package index.

ansible-test runs it as ``python get_pip_<version>.py --disable-pip-version-check pip==<version>
--no-setuptools --no-wheel``.
"""

from __future__ import annotations

import glob
import os
import runpy
import sys


def bundled_pip_wheel() -> str:
    candidates = []
    try:
        import ensurepip

        candidates += glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl"))
    except ImportError:
        pass
    candidates += glob.glob("/usr/share/python-wheels/pip-*.whl")
    if not candidates:
        sys.exit("pip is unavailable: no bundled pip wheel (ensurepip or /usr/share/python-wheels) to bootstrap from")
    return sorted(candidates)[-1]


def main() -> None:
    sys.path.insert(0, bundled_pip_wheel())
    # get-pip.py options, not pip install options: setuptools and wheel are only installed when asked for.
    args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    sys.argv = ["pip", "install", "--upgrade", *args]
    runpy.run_module("pip", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
