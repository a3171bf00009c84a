#!/usr/bin/env python3
"""Each role's README.md, its entry points and variables generated from the role's meta/argument_specs.yml - the one
place a role's inputs are documented (`ansible-doc -t role railsdeploy.aws.<role>` reads the same file).

  scripts/role_docs.py            rewrite the generated part of every role's README.md (make role-docs)
  scripts/role_docs.py --check    exit 1 naming each README.md whose generated part is stale (the unit tests run it)

A README.md is the role's title, then whatever a person wrote about it (kept as written), then the generated part
between two markers: the playbooks and roles that use the role, its entry points, its variables. A role without a
README.md gets one whose text is its main entry point's description. A hand-written "## Variables" section is
replaced by the generated part (so that no variable is documented twice).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COLLECTION = "railsdeploy.aws"
BEGIN = "<!-- BEGIN generated from meta/argument_specs.yml by scripts/role_docs.py (make role-docs): edit those -->"
END = "<!-- END generated -->"
INCLUDES = ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role")


def markup(text: str) -> str:
    """Ansible's documentation markup as Markdown: C(), O(), V(), E(), M(), P(), RV() as code, I() italic, B() bold,
    U() and L() as links."""
    text = re.sub(r"\bL\(([^,()]+),\s*([^()]+)\)", r"[\1](\2)", text)
    text = re.sub(r"\bU\(([^()]+)\)", r"<\1>", text)
    text = re.sub(r"\bI\(([^()]+)\)", r"*\1*", text)
    text = re.sub(r"\bB\(([^()]+)\)", r"**\1**", text)
    text = re.sub(r"\b(?:C|O|V|E|M|P|RV)\(([^()]+)\)", r"`\1`", text)
    return text


def paragraphs(description) -> list[str]:
    if not description:
        return []
    return [markup(" ".join(str(p).split())) for p in ([description] if isinstance(description, str) else description)]


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def default(spec: dict) -> str:
    if "default" not in spec:
        return "(required)" if spec.get("required") else ""
    value = spec["default"]
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value)}`"


def usages(role: str) -> dict[str, set[str]]:
    """Playbooks and other roles' task files that use the role: their path -> the entry points they use."""
    found: dict[str, set[str]] = {}
    name = f"{COLLECTION}.{role}"

    def walk(node, where: str) -> None:
        if isinstance(node, dict):
            for key in INCLUDES:
                if isinstance(node.get(key), dict) and node[key].get("name") in (name, role):
                    found.setdefault(where, set()).add(node[key].get("tasks_from", "main"))
            if isinstance(node.get("roles"), list):
                for entry in node["roles"]:
                    used = entry if isinstance(entry, str) else (entry or {}).get("role", (entry or {}).get("name"))
                    if used in (name, role):
                        found.setdefault(where, set()).add("main")
            for value in node.values():
                walk(value, where)
        elif isinstance(node, list):
            for value in node:
                walk(value, where)

    files = sorted(REPO.glob("playbooks/**/*.yml")) + sorted(
        p for p in REPO.glob("roles/*/tasks/*.yml") if p.parts[-3] != role)
    for path in files:
        if "vars" in path.relative_to(REPO).parts[:2]:
            continue
        walk(yaml.safe_load(path.read_text()), str(path.relative_to(REPO)))
    return found


def generated(role: str, specs: dict) -> str:
    lines = [BEGIN, ""]
    used = usages(role)
    playbooks = {k: v for k, v in used.items() if k.startswith("playbooks/")}
    roles = sorted({k.split("/")[1] for k in used if k.startswith("roles/")})
    lines.append("## Used by")
    lines.append("")
    if playbooks:
        for path, entries in sorted(playbooks.items()):
            lines.append(f"- `{path}`: " + ", ".join(f"`{e}`" for e in sorted(entries)))
    if roles:
        lines.append("- roles: " + ", ".join(f"`{r}`" for r in roles))
    if not used:
        lines.append("- no playbook of the collection (a role for your own playbooks)")
    lines += ["", "## Entry points", "", "| entry point | what it does |", "|---|---|"]
    for entry, spec in specs.items():
        lines.append(f"| `{entry}` | {cell(markup(' '.join(str(spec.get('short_description', '')).split())))} |")
    options: dict[str, tuple[dict, list[str]]] = {}
    for entry, spec in specs.items():
        for option, ospec in (spec.get("options") or {}).items():
            options.setdefault(option, (ospec, []))[1].append(entry)
    if options:
        lines += ["", "## Variables", ""]
        lines.append(f"`ansible-doc -t role {COLLECTION}.{role}` shows the same, entry point by entry point.")
        lines += ["", "| variable | type | default | description | entry points |", "|---|---|---|---|---|"]
        for option, (ospec, entries) in sorted(options.items()):
            text = " ".join(paragraphs(ospec.get("description")))
            if ospec.get("choices"):
                text += " One of: " + ", ".join(f"`{c}`" for c in ospec["choices"]) + "."
            if ospec.get("options"):
                text += " Fields: " + ", ".join(f"`{f}`" for f in ospec["options"]) + "."
            kind = ospec.get("type", "str") + (f" of {ospec['elements']}" if ospec.get("elements") else "")
            where = "all" if len(entries) == len(specs) else ", ".join(f"`{e}`" for e in entries)
            lines.append(f"| `{option}` | {kind} | {cell(default(ospec))} | {cell(text)} | {where} |")
    lines += ["", END]
    return "\n".join(lines) + "\n"


def readme(role: str, current: str | None) -> str:
    specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    block = generated(role, specs)
    if current is None:
        main = specs.get("main") or next(iter(specs.values()))
        intro = [markup(" ".join(str(main.get("short_description", "")).split())) + "."]
        intro += paragraphs(main.get("description"))
        return f"# {COLLECTION}.{role}\n\n" + "\n\n".join(intro) + "\n\n" + block
    if BEGIN in current and END in current:
        before, rest = current.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        return before + block.rstrip("\n") + after
    # A hand-written README: its own "## Variables" section gives way to the generated part, in its place.
    parts = re.split(r"(?m)^(?=## )", current)
    kept = [p for p in parts if not p.startswith("## Variables")]
    at = next((i for i, p in enumerate(parts) if p.startswith("## Variables")), len(parts))
    kept.insert(min(at, len(kept)), block + ("\n" if at < len(parts) - 1 else ""))
    return "".join(kept)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale READMEs (exit 1 if any)")
    args = parser.parse_args()
    stale = []
    for spec in sorted(REPO.glob("roles/*/meta/argument_specs.yml")):
        role = spec.parts[-3]
        path = spec.parents[1] / "README.md"
        current = path.read_text() if path.exists() else None
        wanted = readme(role, current)
        if wanted != current:
            stale.append(str(path.relative_to(REPO)))
            if not args.check:
                path.write_text(wanted)
    if args.check and stale:
        print("Stale role READMEs (run `make role-docs`): " + ", ".join(stale), file=sys.stderr)
        return 1
    if not args.check:
        print(f"{len(stale)} role README(s) written" + (": " + ", ".join(stale) if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
