"""The house rules of docs/architecture.md, checked: planning is pure, the model depends on
nothing, sources and targets never import each other."""

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
