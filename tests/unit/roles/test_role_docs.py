"""Every role's README.md documents what its meta/argument_specs.yml says (scripts/role_docs.py generates that part):
a variable added to a role's spec, or a description changed, shows in its README, and a stale README fails here."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "role_docs.py"


def _role_docs(repo: Path):
    spec = importlib.util.spec_from_file_location("role_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.REPO = repo
    return module


def test_every_role_readme_is_current():
    run = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_a_role_readme_follows_its_argument_specs(tmp_path: Path):
    shutil.copytree(REPO / "roles" / "node_iam", tmp_path / "roles" / "node_iam")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "mine.yml").write_text(
        "- hosts: localhost\n  tasks:\n    - ansible.builtin.include_role:\n"
        "        name: railsdeploy.aws.node_iam\n        tasks_from: main\n")
    docs = _role_docs(tmp_path)
    readme = tmp_path / "roles" / "node_iam" / "README.md"
    readme.write_text("# railsdeploy.aws.node_iam\n\nWritten by hand.\n\n## Variables\n\n| a | b |\n\n"
                      "## Example\n\nx\n")
    first = docs.readme("node_iam", readme.read_text())
    assert "Written by hand." in first and "## Example\n\nx\n" in first and "| a | b |" not in first
    assert "- `playbooks/mine.yml`: `main`" in first
    assert "| `node_iam_path` | str | `/railsdeploy/` | IAM path of the roles and instance profiles. | all |" in first

    specs_file = tmp_path / "roles" / "node_iam" / "meta" / "argument_specs.yml"
    specs = yaml.safe_load(specs_file.read_text())
    specs["argument_specs"]["main"]["options"]["node_iam_boundary"] = {
        "type": "str", "default": "", "description": ["A permissions boundary C(arn:aws:iam::...)."]}
    specs_file.write_text(yaml.safe_dump(specs))
    second = docs.readme("node_iam", first)
    assert "| `node_iam_boundary` | str | `\"\"` | A permissions boundary `arn:aws:iam::...`. | all |" in second
    assert second.count("## Variables") == 1 and "Written by hand." in second
    # A README already generated is rewritten in place, the hand-written text around it kept.
    assert docs.readme("node_iam", second) == second


def test_a_role_without_readme_gets_one_from_its_main_entry_point(tmp_path: Path):
    shutil.copytree(REPO / "roles" / "route53_record", tmp_path / "roles" / "route53_record")
    (tmp_path / "playbooks").mkdir()
    docs = _role_docs(tmp_path)
    made = docs.readme("route53_record", None)
    main = yaml.safe_load((tmp_path / "roles" / "route53_record" / "meta" / "argument_specs.yml").read_text())[
        "argument_specs"]["main"]
    assert made.startswith("# railsdeploy.aws.route53_record\n\n" + main["short_description"].strip())
    assert "no playbook of the collection" in made
