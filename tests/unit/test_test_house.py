"""The test tree's own rule: no module under tests/ imports a test module or a conftest.

A helper two test files need lives in tests/support/ (or, for a stand-in server, tests/fakes/),
so each test file reads and runs on its own, and pytest collects every test once, from its own
file. The check reads the source with `ast`, so it sees imports anywhere: at the top, inside a
function, relative, and through importlib.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent


def is_test_module(name: str) -> bool:
    """tests.<...>.test_x or tests.<...>.conftest, or a bare test_x or conftest (as pytest's
    rootdir-relative imports would find it)."""
    parts = name.split(".")
    last = parts[-1]
    return (last.startswith("test_") or last == "conftest") and (
        parts[0] == "tests" or len(parts) == 1
    )


def imported_names(source: str, package: str) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every module an import in `source` may load; `package` is the
    package the source is in, for relative imports. `from a import b` yields `a` and `a.b`,
    because b may be a module."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (
                    isinstance(node.func, ast.Name)
                    and node.func.id in ("import_module", "__import__")
                )
            )
        ):
            yield node.lineno, node.args[0].value


def imports_of_test_modules(source: str, package: str) -> list[tuple[int, str]]:
    return [(line, name) for line, name in imported_names(source, package) if is_test_module(name)]


def package_of(path: Path) -> str:
    return ".".join(path.parent.relative_to(REPO).parts)


def test_no_module_under_tests_imports_a_test_module_or_a_conftest() -> None:
    modules = sorted(TESTS.rglob("*.py"))
    test_modules = [m for m in modules if m.name.startswith("test_")]
    assert len(test_modules) > 40, "the walk found too few test modules to mean anything"
    assert TESTS / "conftest.py" in modules

    offenders = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in modules
        for line, name in imports_of_test_modules(
            path.read_text(encoding="utf-8"), package_of(path)
        )
    ]

    assert offenders == [], "move what they share to tests/support/:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "source",
    [
        "from tests.integration.test_roster_sync import opaque_id",
        "def test_x():\n    from tests.integration.test_ldap_source import add_staff",
        "from tests.integration import test_cli",
        "import tests.integration.test_cli as cli",
        "from tests.conftest import missing_server",
        "from tests import conftest",
        "from .test_cli import run_module",
        "from . import test_cli",
        "from .. import conftest",
        "import conftest",
        "import importlib\nimportlib.import_module('tests.integration.test_cli')",
        "__import__('tests.unit.test_plan')",
    ],
)
def test_the_check_sees_every_way_to_import_a_test_module(source: str) -> None:
    assert imports_of_test_modules(source, "tests.integration") != []


@pytest.mark.parametrize(
    "source",
    [
        "from tests.support.ids import opaque_id",
        "from tests.fakes.slapd import Slapd",
        "import tests.fakes.faultproxy",
        "from connector.cli import main",
        "from . import helpers",
        "from test import support",  # the standard library's test package
        "HIDE = 'import tests.integration.test_cli'",  # a string is not an import
    ],
)
def test_the_check_lets_helpers_and_everything_else_be(source: str) -> None:
    assert imports_of_test_modules(source, "tests.integration") == []
