"""The README's install steps, for real: `make dist` builds the wheel (and sdist) with
`python -m build`, the wheel goes into a fresh virtual environment, and `connector` runs from
there, far from this repository, with a config that names its mapping `builtin:default`.

The fresh environment gets the wheel from a local file (`--no-index`); its dependencies are
this environment's (a `.pth` line), so nothing is downloaded but the build backend, and the
wheel's declared dependencies are checked against the versions present. `python -m build`
fetches setuptools into an isolated build environment (pip's cache keeps it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tests.support.paths import REPO
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN
from tests.support.workspace import Workspace

SHIPPED = {
    "connector/share/mappings/default.yaml",
    "connector/share/mappings/ilt.yaml",
    "connector/share/mappings/ilt-file.yaml",
    "connector/share/connector.example.yaml",
}


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=240,
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def source_tree(into: Path) -> Path:
    """What `make dist` reads (the repository minus tests, caches and state), copied, so the
    build writes its egg-info there and not into the repository."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, into / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.db*")
    for folder in ("connector", "mappings", "config"):
        shutil.copytree(REPO / folder, into / folder, symlinks=True, ignore=ignore)
    return into


def test_make_dist_builds_what_the_makefile_says() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\ndist:", 1)[1].split("\n\n", 1)[0]
    assert "-m build" in recipe and "--outdir dist" in recipe


@pytest.mark.timeout(300)
def test_the_wheel_installs_and_runs_away_from_the_repository(
    tmp_path: Path, scim_url: str
) -> None:
    dist = tmp_path / "dist"
    src = tmp_path / "src"
    src.mkdir()
    source_tree(src)
    run(sys.executable, "-m", "build", "--outdir", dist, src, cwd=tmp_path)
    wheels = list(dist.glob("connector-*-py3-none-any.whl"))
    assert len(wheels) == 1 and len(list(dist.glob("connector-*.tar.gz"))) == 1
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = Parser().parsestr(wheel.read(info).decode()).get_all("Requires-Dist") or []
        entry_points = wheel.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert names >= SHIPPED
    assert "connector = connector.cli:main" in entry_points

    # every dependency the wheel declares is present here, in a version it accepts
    for requirement in map(Requirement, requires):
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            version = metadata.version(requirement.name)
            assert requirement.specifier.contains(version, prereleases=True), (
                f"{requirement} is not satisfied by {version}"
            )

    # `python3 -m venv /opt/connector && /opt/connector/bin/pip install connector-*.whl`
    venv = tmp_path / "opt-connector"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    bin_dir = venv / "bin"
    purelib = Path(
        run(
            bin_dir / "python",
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
            cwd=tmp_path,
        ).strip()
    )
    (purelib / "zz_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = [sys.executable, "-m", "pip", "--python", bin_dir / "python"]
    run(*pip, "install", "--quiet", "--no-index", "--no-deps", wheels[0], cwd=tmp_path)

    away = tmp_path / "site"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CONNECTOR_CONFIG")}
    installed = run(
        bin_dir / "python", "-c", "import connector; print(connector.__file__)", cwd=away, env=env
    )
    assert Path(installed.strip()).is_relative_to(purelib)
    assert "Usage: connector" in run(bin_dir / "connector", "--help", cwd=away, env=env)
    # the README's way to the example config
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (example_code,) = re.findall(r"/opt/connector/bin/python -c '([^']+)'", readme)
    example = Path(run(bin_dir / "python", "-c", example_code, cwd=away, env=env).strip())
    assert example.is_relative_to(purelib)
    assert example.read_bytes() == (REPO / "config" / "example.yaml").read_bytes()

    workspace = Workspace(away, scim_url)
    workspace.students([student("E1", "Åsa", "Berg"), student("E2", "Erik", "Lind")])
    config = {**workspace.config(), "mapping": "builtin:default"}
    (away / "connector.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    env |= {"TEST_SCIM_TOKEN": SCIM_TOKEN}
    checked = run(bin_dir / "connector", "--config", "connector.yaml", "check", cwd=away, env=env)
    # the built-in profile is the installed package's, not the repository's
    shipped = purelib / "connector" / "share" / "mappings" / "default.yaml"
    assert f"ok    mapping {shipped} (" in checked
    plan = run(
        bin_dir / "connector", "--config", "connector.yaml", "plan", "--json", cwd=away, env=env
    )
    assert yaml.safe_load(plan)["counts"]["create_user"] == 2
