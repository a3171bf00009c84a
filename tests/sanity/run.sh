#!/usr/bin/env bash
# ansible-test sanity for this collection's plugins/.
#
# Usage: tests/sanity/run.sh [extra ansible-test sanity args, e.g. --test validate-modules]
# Env:   SANITY_PYTHON (default 3.11), ANSIBLE_TEST (default .venv/bin/ansible-test of this checkout).
#
# Layout: ansible-test only runs inside <dir>/ansible_collections/<namespace>/<name>/, and the repo root IS
# the collection root, so the collection is copied to build/sanity/ansible_collections/railsdeploy/aws
# (build/ is git-ignored). It is a plain copy, not `git ls-files`, so files not yet committed are tested too.
# ANSIBLE_TEST_CONTENT_ROOT pins ansible-test to the copy: otherwise it walks up, finds the repo's own .git,
# asks git for the file list and gets nothing (build/ is ignored). With no .git at the content root it lists
# the files itself (its "unversioned" source provider): no git repository is needed.
#
# Requirements: every sanity test runs in its own virtualenv under ~/.ansible/test/venv, with the pinned
# requirements that ship with ansible-test (ansible_test/_data/requirements/sanity.*.txt), installed from
# the package index by pip. This happens with or without --venv/--requirements. To put pip into those
# empty virtualenvs ansible-test runs ~/.ansible/test/cache/get_pip_<version>.py, which it downloads from a
# host that is not reachable here; tests/sanity/get_pip.py is an equivalent stand-in (pip from Python's
# bundled wheel installs the requested pip) and is copied there when the file is missing. First run: about
# a minute of installs; later runs reuse the cached virtualenvs. The controller is this venv's Python as it
# is (no --venv, no --requirements: nothing is installed into .venv).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python_version="${SANITY_PYTHON:-3.11}"
ansible_test="${ANSIBLE_TEST:-${repo_root}/.venv/bin/ansible-test}"
venv_bin="$(dirname "${ansible_test}")"
dest="${repo_root}/build/sanity/ansible_collections/railsdeploy/aws"

if [[ ! -x "${ansible_test}" ]]; then
    echo "ansible-test not found at ${ansible_test}: create the venv (pip install -r requirements.txt) or set ANSIBLE_TEST" >&2
    exit 2
fi

# The pip version ansible-test bootstraps into its virtualenvs (24.2 for ansible-core 2.19).
pip_version="$("${venv_bin}/python" - "${python_version}" <<'EOF'
import sys, types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))["pip"])
EOF
)"
get_pip_cache="${HOME}/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [[ ! -s "${get_pip_cache}" ]]; then
    mkdir -p "$(dirname "${get_pip_cache}")"
    cp "${repo_root}/tests/sanity/get_pip.py" "${get_pip_cache}"
fi

rm -rf "${dest}"
mkdir -p "${dest}"
# Everything but tool state, build output and VCS metadata.
tar -C "${repo_root}" \
    --exclude=./.venv --exclude=./.ansible --exclude=./build --exclude=./lab/.state --exclude=./.cache --exclude=./.git \
    --exclude=./tests/output --exclude=./bench/results --exclude='./*.tar.gz' \
    --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache \
    -cf - . | tar -C "${dest}" -xf -

# The collections this one depends on (galaxy.yml `dependencies`), linked beside it from the venv: ansible-test
# resolves other collections' doc fragments (amazon.aws.common.modules, ...) and module_utils
# (AnsibleAWSModule) only inside the collection root it tests in, build/sanity/ansible_collections.
"${venv_bin}/python" - "${repo_root}/galaxy.yml" "$(dirname "$(dirname "${dest}")")" <<'EOF'
import os, sys, sysconfig, yaml
galaxy, root = sys.argv[1], sys.argv[2]
installed = os.path.join(sysconfig.get_paths()["purelib"], "ansible_collections")
for name in yaml.safe_load(open(galaxy)).get("dependencies") or {}:
    namespace, collection = name.split(".")
    source, link = os.path.join(installed, namespace, collection), os.path.join(root, namespace, collection)
    if not os.path.isdir(source):
        sys.exit(f"collection {name} (a galaxy.yml dependency) is not installed in {installed}: pip install -r requirements.txt")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.islink(link) and os.readlink(link) != source:
        os.unlink(link)
    if not os.path.lexists(link):
        os.symlink(source, link)
EOF

cd "${dest}"
# The venv's bin first: ansible-test runs its helpers (ansible-doc, python) from PATH.
export PATH="${venv_bin}:${PATH}"
export ANSIBLE_TEST_CONTENT_ROOT="${dest}"

# --skip-test, with reasons:
#   pslint: needs PowerShell (pwsh), which is not installed; this collection has no PowerShell code.
exec "${ansible_test}" sanity \
    --python "${python_version}" \
    --color no \
    --skip-test pslint \
    "$@" \
    plugins/
