#!/usr/bin/env bash
# Build the collection artifact, install it offline into a throw-away collections path and check that
# ansible-doc renders the custom modules from the installed copy (not from the checkout).
#
# Usage: tests/build/check_build.sh
# Env:   VENV_BIN (default .venv/bin of this checkout) — where ansible-galaxy / ansible-doc live.
#
# The dependencies named in galaxy.yml (amazon.aws, community.aws, ...) come with the `ansible` package in
# the venv, so the install uses --offline --no-deps: nothing is fetched from Galaxy.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv_bin="${VENV_BIN:-${repo_root}/.venv/bin}"
export PATH="${venv_bin}:${PATH}"

work="$(mktemp -d "${TMPDIR:-/tmp}/railsdeploy-build-check.XXXXXX")"
trap 'rm -rf "${work}"' EXIT

version="$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' "${repo_root}/galaxy.yml")"
artifact="${work}/dist/railsdeploy-aws-${version}.tar.gz"

echo "== build"
ansible-galaxy collection build "${repo_root}" --output-path "${work}/dist"
test -s "${artifact}" || { echo "FAIL: ${artifact} was not built" >&2; exit 1; }

echo "== artifact contents"
listing="$(tar -tzf "${artifact}")"
for required in MANIFEST.json FILES.json meta/runtime.yml plugins/modules/ebs_device_info.py \
    plugins/module_utils/_ebs_device.py; do
    grep -qx "${required}" <<<"${listing}" || { echo "FAIL: ${required} missing from the artifact" >&2; exit 1; }
done
# Nothing from the developer's machine or tool state may ship.
if leaked="$(grep -E '^(\.venv|\.ansible|build|lab/\.state|\.cache|tests/output|bench/results|\.git|\.pytest_cache|\.ruff_cache)(/|$)|__pycache__|\.pyc$|\.tar\.gz$' <<<"${listing}")"; then
    echo "FAIL: build_ignore let these into the artifact:" >&2
    echo "${leaked}" >&2
    exit 1
fi
echo "$(wc -l <<<"${listing}") entries, none ignored-by-design"

echo "== install (offline, no deps)"
# --force: the checkout itself may be on the configured collections path (build/collections).
env -u ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH="${work}/collections" ansible-galaxy collection install --offline --no-deps --force -p "${work}/collections" "${artifact}"

echo "== ansible-doc from the installed copy"
# Run from the temp dir so no ansible.cfg or collection in the checkout is picked up.
cd "${work}"
export ANSIBLE_COLLECTIONS_PATH="${work}/collections" ANSIBLE_NOCOLOR=1
module=railsdeploy.aws.ebs_device_info
short_description="Find the block device of an attached EBS volume on the node"
installed="${work}/collections/ansible_collections/railsdeploy/aws/plugins/modules/ebs_device_info.py"

# The text page names the file it was read from, so it must be the installed one, and show the options.
page="$(ansible-doc "${module}")"
if ! grep -qF "${installed}" <<<"${page}" || ! grep -q "volume_id" <<<"${page}"; then
    echo "FAIL: ansible-doc did not render ${module} from ${installed}:" >&2
    head -20 <<<"${page}" >&2
    exit 1
fi
listed="$(ansible-doc --list railsdeploy.aws)"
if ! awk -v m="${module}" '$1 == m { found = 1 } END { exit !found }' <<<"${listed}"; then
    echo "FAIL: ansible-doc --list railsdeploy.aws does not list ${module}:" >&2
    echo "${listed}" >&2
    exit 1
fi
# The text page shows the description; the short description (truncated by --list) is checked in --json.
ansible-doc --json "${module}" | python -c '
import json, sys
doc = json.load(sys.stdin)[sys.argv[1]]["doc"]
if doc["short_description"] != sys.argv[2]:
    sys.exit("FAIL: short_description is %r" % doc["short_description"])
' "${module}" "${short_description}"
echo "OK: railsdeploy-aws-${version}.tar.gz builds, installs offline and documents ${module}"
