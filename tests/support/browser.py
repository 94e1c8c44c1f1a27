"""Headless Chromium: a page's DOM after the browser rendered it, and a screenshot into the CI
artifacts folder (`$CI_ARTIFACTS`, else `artifacts/` at the repo root).

Without Chromium a test skips on a laptop and fails when CI=true (tests/support/servers.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.paths import REPO
from tests.support.servers import missing_server

TIMEOUT_SECONDS = 120


def chromium() -> str:
    """The Chromium binary, or the test skipped (failed in CI)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    missing_server("Chromium is not installed (Debian: apt-get install chromium)")


def _run(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",  # as root (CI containers) Chromium has no sandbox to use
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def dump_dom(url: str, profile: Path) -> str:
    """The DOM as Chromium built it from the page (serialised back to HTML)."""
    return _run(profile, "--dump-dom", url).stdout


def screenshot(url: str, path: Path, profile: Path, size: str = "1280,1600") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    _run(profile, f"--screenshot={path}", f"--window-size={size}", url)
    return path


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("CI_ARTIFACTS") or REPO / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
