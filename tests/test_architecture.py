"""The layers hold: every import of every module (those inside functions included) follows the rules.

    geo/            imports nothing of the project (pure geometry and codes)
    layers/         layers/ and geo/ (declarations of the tile layers and their rendering)
    core            gridwatch/ minus api/, commands/, cli.py, server.py: the core, geo/, layers/
    etl/            etl/, the core and geo/ (loaders parse files and call the core)
    gridwatch/api/  the API, the core and layers/ (a face: parse, call the core, render)
    dashboard/      the dashboard, the core and layers/, never gridwatch/api/ (a face too)
    gridwatch/server.py   the assembly: the only module that imports dashboard/ (and both faces)
    gridwatch/cli.py, gridwatch/commands/   the CLI face: the core, geo/, layers/, etl/ and the assembly

An import inside a function is allowed only with a comment on its line or the line above saying
why (a heavy or optional dependency loaded only when needed). Files of other work in progress
that still hold uncommented in-function imports are listed in ``PENDING`` with their exact count,
which may only shrink (an entry above the count fails as well, so the list follows the fixes).
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("geo", "layers", "gridwatch", "etl", "dashboard")

ALLOWED: dict[str, set[str]] = {
    "geo": {"geo"},
    "layers": {"layers", "geo"},
    "core": {"core", "geo", "layers"},
    "etl": {"etl", "core", "geo"},
    "api": {"api", "core", "layers"},
    "dashboard": {"dashboard", "core", "layers"},
    "cli": {"cli", "core", "geo", "layers", "etl", "assembly"},
    "assembly": {"assembly", "core", "api", "dashboard", "layers", "geo"},
}

# Uncommented in-function imports still present in files of work in progress elsewhere. A count may
# only go down, and an entry above its file's count fails too (lower it; a file reaching zero leaves
# the list), so the list shrinks as fixes land.
PENDING: dict[str, int] = {
    "gridwatch/db.py": 1,
}
# Files being edited right now by other work: their count may fall below the entry until that work
# lowers it (checked only as an upper bound meanwhile). Empty this set as those changes land.
IN_PROGRESS: set[str] = {"gridwatch/db.py"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


def area(module: str) -> str | None:
    """The layer a dotted module name belongs to, or None for anything outside the project.

    >>> area("gridwatch.regions"), area("gridwatch.api.regions"), area("gridwatch.commands.serve")
    ('core', 'api', 'cli')
    """
    parts = module.split(".")
    top = parts[0]
    if top in ("geo", "layers", "etl", "dashboard"):
        return top
    if top != "gridwatch":
        return None
    second = parts[1] if len(parts) > 1 else ""
    if second == "api":
        return "api"
    if second in ("commands", "cli"):
        return "cli"
    if second == "server":
        return "assembly"
    return "core"


def _module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(root: Path, dotted: str) -> bool:
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _targets(root: Path, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The project modules ``node`` imports (``from pkg import sub`` names the submodule)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        package = _module_name(root, path).split(".")
        if path.name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.append(sub if _is_module(root, sub) else base)
    return out


def _in_function_imports(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for n in ast.walk(fn):
                if isinstance(n, (ast.Import, ast.ImportFrom)):
                    inside.add(id(n))
    return inside


def _comment_lines(source: str) -> set[int]:
    return {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT}


def check_tree(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[Finding]:
    """Every import that breaks the layer rules, and every in-function import without its reason."""
    findings: list[Finding] = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source, filename=str(path))
            rel = path.relative_to(root).as_posix()
            own = area(_module_name(root, path))
            inside = _in_function_imports(tree)
            comments = _comment_lines(source)
            for node in ast.walk(tree):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                for target in dict.fromkeys(_targets(root, path, node)):
                    other = area(target)
                    if other is not None and other not in ALLOWED[own]:
                        findings.append(Finding(rel, node.lineno, f"{own} may not import {other} ({target})"))
                if id(node) in inside:
                    lines = set(range(node.lineno, (node.end_lineno or node.lineno) + 1)) | {node.lineno - 1}
                    if not lines & comments:
                        findings.append(Finding(rel, node.lineno, "import inside a function without a comment saying why"))
    return findings


def test_every_import_in_the_tree_follows_the_layer_rules():
    findings = check_tree(ROOT)
    layering = [str(f) for f in findings if "may not import" in f.problem]
    assert layering == [], "\n".join(layering)


def test_imports_inside_functions_say_why_and_none_are_added():
    findings = [f for f in check_tree(ROOT) if "inside a function" in f.problem]
    per_file: dict[str, list[Finding]] = {}
    for f in findings:
        per_file.setdefault(f.path, []).append(f)
    over = [f"{path}: {len(fs)} uncommented in-function imports (allowed {PENDING.get(path, 0)}): "
            + ", ".join(str(f.line) for f in fs)
            for path, fs in sorted(per_file.items()) if len(fs) > PENDING.get(path, 0)]
    assert over == [], "\n".join(over)
    stale = [f"{path}: PENDING allows {allowed}, the file has {len(per_file.get(path, []))}: lower its entry "
             "(or remove it at zero)" for path, allowed in sorted(PENDING.items())
             if len(per_file.get(path, [])) < allowed and path not in IN_PROGRESS]
    assert stale == [], "\n".join(stale)


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_the_checker_reports_a_forbidden_import_added_to_a_module(tmp_path):
    for package in ("geo", "layers", "gridwatch", "gridwatch/api", "etl", "dashboard"):
        _write(tmp_path, f"{package}/__init__.py", "")
    _write(tmp_path, "gridwatch/regions.py", "from geo import codes\n")
    _write(tmp_path, "gridwatch/api/regions.py", "from gridwatch import regions\n")
    _write(tmp_path, "geo/codes.py", "import re\n")
    _write(tmp_path, "dashboard/good.py", "import layers\nfrom gridwatch.regions import x\n\n\ndef f():\n"
                                          "    # heavy optional dependency, loaded only when exporting\n"
                                          "    import folium\n")
    assert check_tree(tmp_path) == []

    # the dashboard reaching into the API, inside a function with no reason given
    _write(tmp_path, "dashboard/bad.py", "def f():\n    from gridwatch.api.regions import router\n    return router\n")
    # geo importing the core at module level, through a relative import of a sibling too
    _write(tmp_path, "geo/worse.py", "from gridwatch import regions\nfrom . import codes\n")
    # the API importing the dashboard
    _write(tmp_path, "gridwatch/api/export.py", "from dashboard import good\n")
    found = {(f.path, f.problem) for f in check_tree(tmp_path)}
    assert found == {
        ("dashboard/bad.py", "dashboard may not import api (gridwatch.api.regions)"),
        ("dashboard/bad.py", "import inside a function without a comment saying why"),
        ("geo/worse.py", "geo may not import core (gridwatch.regions)"),
        ("gridwatch/api/export.py", "api may not import dashboard (dashboard.good)"),
    }


def test_only_the_assembly_may_import_the_dashboard(tmp_path):
    for package in ("gridwatch", "gridwatch/commands", "dashboard"):
        _write(tmp_path, f"{package}/__init__.py", "")
    _write(tmp_path, "dashboard/shell.py", "")
    _write(tmp_path, "gridwatch/server.py", "from dashboard.shell import x\n")
    _write(tmp_path, "gridwatch/commands/serve.py", "from gridwatch.server import create_app\n")
    assert check_tree(tmp_path, ("gridwatch", "dashboard")) == []
    _write(tmp_path, "gridwatch/commands/serve.py", "import dashboard.shell\n")
    _write(tmp_path, "gridwatch/kpi.py", "import gridwatch.server\n")
    found = sorted(str(f) for f in check_tree(tmp_path, ("gridwatch", "dashboard")))
    assert found == ["gridwatch/commands/serve.py:1: cli may not import dashboard (dashboard.shell)",
                     "gridwatch/kpi.py:1: core may not import assembly (gridwatch.server)"]
