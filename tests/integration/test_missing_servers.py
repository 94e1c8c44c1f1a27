"""A test whose server is missing may skip on a laptop, but fails when CI=true.

The slapd tests are run in a child pytest whose slapd is hidden (a plugin makes
`tests.fakes.slapd.slapd_binary` find none), once as on a laptop and once as in CI; the SFTP
delivery tests likewise with sshd hidden.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO

HIDE_SLAPD = """\
import tests.fakes.slapd

tests.fakes.slapd.slapd_binary = lambda: None
"""

HIDE_SSHD = """\
import tests.fakes.sshd

tests.fakes.sshd.sshd_binary = lambda: None
"""


def outcomes_without_slapd(folder: Path, *, ci: bool) -> dict[str, int]:
    return outcomes_hiding(folder, HIDE_SLAPD, ["tests/integration/test_slapd_fixture.py"], ci=ci)


def outcomes_hiding(folder: Path, plugin: str, tests: list[str], *, ci: bool) -> dict[str, int]:
    (folder / "hide_server.py").write_text(plugin, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(REPO)])
    if ci:
        env["CI"] = "true"
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "hide_server",
            *tests,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    summary = child.stdout.strip().splitlines()[-1]
    found = re.findall(r"(\d+) (passed|failed|skipped|error)", summary)  # "9 errors" too
    counts = {word: int(n) for n, word in found}
    assert counts, child.stdout + child.stderr
    return counts


@pytest.mark.parametrize("ci", [False, True], ids=["laptop", "ci"])
def test_slapd_tests_skip_on_a_laptop_and_fail_in_ci_without_slapd(
    tmp_path: Path, ci: bool
) -> None:
    counts = outcomes_without_slapd(tmp_path, ci=ci)

    assert counts.get("passed", 0) == 0, counts  # slapd really was hidden
    if ci:
        assert counts.get("skipped", 0) == 0, counts
        assert counts.get("failed", 0) + counts.get("error", 0) > 0, counts  # a fixture's: error
    else:
        assert counts.get("failed", 0) + counts.get("error", 0) == 0, counts
        assert counts.get("skipped", 0) > 0, counts


@pytest.mark.parametrize("ci", [False, True], ids=["laptop", "ci"])
def test_sftp_tests_skip_on_a_laptop_and_fail_in_ci_without_sshd(tmp_path: Path, ci: bool) -> None:
    tests = ["tests/integration/test_file_delivery.py", "-k", "sftp or host_key or login"]
    counts = outcomes_hiding(tmp_path, HIDE_SSHD, tests, ci=ci)

    if ci:
        assert counts.get("skipped", 0) == 0, counts
        assert counts.get("error", 0) > 0, counts
    else:
        assert counts.get("failed", 0) + counts.get("error", 0) == 0, counts
        assert counts.get("skipped", 0) > 0, counts
