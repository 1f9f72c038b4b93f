"""Docs and packaging that cannot rot: README covers every setting and command; conda and pip agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from gridwatch.cli import COMMANDS
from gridwatch.commands.etl import ETL_COMMANDS
from gridwatch.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _name(requirement: str) -> str:
    name = re.split(r"[\s<>=!~\[;]", requirement.strip(), maxsplit=1)[0]
    return name.lower().replace("_", "-")


def test_every_setting_is_documented_in_the_readme_table_with_its_default():
    for s in SETTINGS:
        row = next((line for line in README.splitlines() if line.startswith(f"| `{s.name}`")), None)
        assert row is not None, f"{s.name} is missing from README's Configuration table"
        assert f"`{s.default}`" in row, f"README shows another default for {s.name}"


def test_every_command_is_documented_in_the_readme():
    for name, _, _ in COMMANDS:
        assert f"`gridwatch {name}" in README, f"gridwatch {name} is missing from README"
    for name, _, _ in ETL_COMMANDS:
        assert f"`gridwatch etl {name}" in README, f"gridwatch etl {name} is missing from README"


def test_the_quick_start_holds_exactly_the_run_command_then_the_test_command():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:sh|bash)?\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    assert blocks[0].strip().splitlines() == ["./run.sh", "./test.sh"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./test.sh" in ci


def test_environment_yml_lists_the_same_packages_as_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pip_side = {_name(r) for r in pyproject["project"]["dependencies"]}
    pip_side |= {_name(r) for r in pyproject["project"]["optional-dependencies"]["test"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_side: set[str] = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            conda_side |= {_name(r) for r in dep.get("pip", [])}
        else:
            conda_side.add(_name(dep))
    conda_side -= {"python", "pip", "postgresql", "postgis"}
    assert pip_side == conda_side, f"only in pyproject: {sorted(pip_side - conda_side)}; only in environment.yml: {sorted(conda_side - pip_side)}"
    assert any(str(d).startswith("postgis") for d in env["dependencies"] if not isinstance(d, dict))
