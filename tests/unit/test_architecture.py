"""The house rules of docs/architecture.md, checked: planning is pure, the model depends on
nothing, sources and targets never import each other, modules and functions stay small."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "connector"


def imports_of(path: Path) -> set[str]:
    """The modules a file imports (absolute names), wherever in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_planning_is_pure_by_import() -> None:
    probe = (
        "import connector.planning.plan, connector.planning.guard, sys; "
        "print(any(m in sys.modules for m in ('httpx', 'sqlite3', 'ldap3')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_the_model_depends_on_nothing_of_the_connector() -> None:
    assert not {m for m in imports_of(PACKAGE / "people" / "model.py") if m.startswith("connector")}


def test_sources_and_targets_never_import_each_other() -> None:
    for folder, other in (("sources", "connector.targets"), ("targets", "connector.sources")):
        for path in (PACKAGE / folder).rglob("*.py"):
            wrong = {m for m in imports_of(path) if m == other or m.startswith(other + ".")}
            assert not wrong, (path, wrong)


MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def test_modules_and_functions_stay_small() -> None:
    too_big = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(PACKAGE.parent)
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_big.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_big.append(f"{name}:{node.lineno} {node.name}: {length} lines")
    assert not too_big, "\n".join(too_big)
