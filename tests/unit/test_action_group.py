"""meta/runtime.yml's action group railsdeploy.aws.aws lists every AWS module a task of this collection calls.

The group lists modules one by one (extending amazon.aws.aws and community.aws.aws would make Ansible resolve
about 350 actions each time it loads a play naming the group). The price is that a new task with an AWS module
not in the list gets none of the group's module_defaults: no endpoint_url, so in the lab it would call real AWS.
This test finds every such task, and every entry that names no module.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SITE = Path(yaml.__file__).resolve().parents[1]  # the venv's site-packages, where amazon.aws and community.aws are
TASK_DIRS = ["playbooks", "roles", "molecule", "tests"]
# A task's module key: `amazon.aws.ec2_vol:` or `community.aws.elb_target:` at the start of a line or list item.
TASK_MODULE = re.compile(r"^\s*(?:-\s+)?((?:amazon|community)\.aws\.[a-z0-9_]+):", re.MULTILINE)
# This collection's modules that call AWS (they are AnsibleAWSModule modules).
OWN_AWS_MODULES = {p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if "AnsibleAWSModule" in p.read_text()}


def _group() -> list[str]:
    return yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())["action_groups"]["aws"]


def _used_by_tasks(text: str) -> set[str]:
    return set(TASK_MODULE.findall(text))


def test_the_pattern_finds_task_modules():
    text = ("- name: x\n  amazon.aws.ec2_vol:\n    id: v\n"
            "- community.aws.elb_target:\n    x: 1\n# amazon.aws.route53: no\n")
    assert _used_by_tasks(text) == {"amazon.aws.ec2_vol", "community.aws.elb_target"}


def test_every_aws_module_a_task_calls_is_in_the_group():
    group = set(_group())
    missing = {}
    for top in TASK_DIRS:
        for path in (REPO / top).rglob("*.yml"):
            for module in _used_by_tasks(path.read_text()) - group:
                missing.setdefault(module, []).append(str(path.relative_to(REPO)))
    assert not missing, (
        "AWS modules called by tasks but not in meta/runtime.yml's action group `aws` (add them there, or the "
        f"tasks get no endpoint_url or region): {missing}")


def test_every_entry_of_the_group_is_a_module():
    wrong = []
    for entry in _group():
        if entry in OWN_AWS_MODULES:
            path = REPO / "plugins" / "modules" / f"{entry}.py"
        else:
            namespace, name, module = entry.split(".")
            path = SITE / "ansible_collections" / namespace / name / "plugins" / "modules" / f"{module}.py"
        if not path.is_file():
            wrong.append(entry)
    assert not wrong, f"meta/runtime.yml's action group `aws` names no such module: {wrong}"


def test_this_collections_aws_modules_are_in_the_group():
    assert OWN_AWS_MODULES, "no module of plugins/modules is an AnsibleAWSModule: the test reads the wrong place"
    missing = OWN_AWS_MODULES - set(_group())
    assert not missing, f"modules of this collection that call AWS, not in meta/runtime.yml's group `aws`: {missing}"
