"""`status` with nothing secret at hand, local time beside UTC, and `--version`."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from click.testing import CliRunner

from connector.cli import main
from tests.support.ids import ID_KEY
from tests.support.paths import REPO
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN
from tests.support.workspace import Workspace

A = "11111111"


def bare(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m connector ARGS` with an empty environment (no tokens, no keys)."""
    return subprocess.run(
        [sys.executable, "-m", "connector", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        timeout=60,
    )


def test_status_needs_no_secret_and_shows_local_time(tmp_path: Path, scim_url: str) -> None:
    key_file = tmp_path / "id-key"
    key_file.write_text(ID_KEY, encoding="utf-8")
    workspace = Workspace(tmp_path, scim_url)
    workspace.students([student("E1", "Åsa", "Öberg", A)])
    workspace.overrides["external_id"] = {"key_file": str(key_file)}
    workspace.overrides["daemon"] = {"timezone": "Europe/Stockholm"}
    assert workspace.sync().exit_code == 0
    key_file.unlink()  # as for a user who may read the config but not the credentials

    status = bare("--config", str(workspace.config_path), "status")

    assert status.returncode == 0, status.stderr
    assert "Daemon: not running" in status.stdout
    assert "created 1" in status.stdout
    assert "STARTED UTC (Europe/Stockholm)" in status.stdout
    for secret in (SCIM_TOKEN, ID_KEY, "${TEST_SCIM_TOKEN}"):
        assert secret not in status.stdout + status.stderr
    # everything else still needs its secrets
    refused = bare("--config", str(workspace.config_path), "plan")
    assert refused.returncode == 2
    assert "TEST_SCIM_TOKEN is not set" in refused.stderr


def test_version_from_the_installed_metadata() -> None:
    expected = f"connector {version('connector')}\n"
    as_module = bare("--version")
    assert (as_module.returncode, as_module.stdout) == (0, expected)
    in_process = CliRunner().invoke(main, ["--version"])
    assert (in_process.exit_code, in_process.stdout) == (0, expected)
