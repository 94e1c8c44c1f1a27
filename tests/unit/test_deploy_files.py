"""The deployment files parse and point at the real command, options and paths."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from connector.cli import main
from tests.support.servers import missing_server

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"


def systemd_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if re.fullmatch(r"\[[A-Za-z]+\]", line):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, separator, value = line.partition("=")
        assert separator and current is not None, f"not a unit file line: {raw!r}"
        current.setdefault(key, []).append(value)
    return sections


def test_systemd_unit_runs_the_daemon_hardened() -> None:
    unit = systemd_unit(DEPLOY / "systemd" / "connector.service")
    service = unit["Service"]
    command = service["ExecStart"][0].split()
    assert command[0] == "/opt/connector/bin/connector"  # the README's venv
    assert command[1:] == ["--config", "/etc/connector/connector.yaml", "run"]
    assert service["Type"] == ["notify"] and service["NotifyAccess"] == ["main"]
    assert service["WatchdogSec"] == ["120"]
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["DynamicUser"] == ["yes"]
    assert service["StateDirectory"] == ["connector"]
    # the dynamic user can read the config directory; secrets only as credentials
    assert service["ConfigurationDirectory"] == ["connector"]
    assert service["ConfigurationDirectoryMode"] == ["0755"]
    # every secret optional: one directory of credential files, not one mandatory file each
    assert service["LoadCredential"] == ["connector:/etc/connector/credentials"]
    # optional paths: a site without CSV exports or an environment file still starts
    assert service["ReadOnlyPaths"] == ["-/srv/exports"]
    assert all(value.startswith("-") for value in service.get("EnvironmentFile", []))
    assert "ExecReload" in service and "-HUP" in service["ExecReload"][0]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_systemd_unit_credentials_match_what_it_tells_the_config() -> None:
    """The paths the unit's comments give for the config are where the credentials arrive."""
    path = DEPLOY / "systemd" / "connector.service"
    named = set(re.findall(r"_file: +\$\{CREDENTIALS_DIRECTORY\}/(\S+)", path.read_text()))
    assert named == {"connector_scim-token", "connector_id-key", "connector_ldap-password"}
    # LoadCredential=ID:DIRECTORY names each file's credential ID_FILE
    credential_id = systemd_unit(path)["Service"]["LoadCredential"][0].split(":")[0]
    assert all(name.startswith(f"{credential_id}_") for name in named)


def systemd_analyze() -> str:
    if not Path(SYSTEMD_ANALYZE).is_file():
        missing_server(f"{SYSTEMD_ANALYZE} is not installed (Debian's systemd)")
    return SYSTEMD_ANALYZE


def runnable_unit(folder: Path) -> Path:
    """The unit with ExecStart at this environment's real `connector` (verify checks that the
    binary exists); nothing else changed."""
    connector = Path(sys.executable).parent / "connector"
    assert connector.is_file(), f"no console script {connector}: is the package installed?"
    text = (DEPLOY / "systemd" / "connector.service").read_text()
    assert text.count("ExecStart=/opt/connector/bin/connector ") == 1
    unit = folder / "connector.service"
    unit.write_text(
        text.replace("ExecStart=/opt/connector/bin/connector ", f"ExecStart={connector} ")
    )
    return unit


def test_systemd_analyze_verify_passes_without_a_warning(tmp_path: Path) -> None:
    binary = systemd_analyze()
    unit = runnable_unit(tmp_path)
    result = subprocess.run(
        [binary, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    # verify exits 0 on an unknown key or a value it cannot parse ("ignoring"): any output fails
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_systemd_analyze_verify_would_catch_a_mistake(tmp_path: Path) -> None:
    binary = systemd_analyze()
    unit = runnable_unit(tmp_path)
    unit.write_text(unit.read_text().replace("Type=notify", "Type=notfy"))
    result = subprocess.run([binary, "verify", str(unit)], capture_output=True, text=True)
    assert "Failed to parse service type" in result.stderr


def test_systemd_unit_stays_hardened(tmp_path: Path) -> None:
    """`systemd-analyze security` rates the unit's exposure (0 best, 10 worst): at most 2.0."""
    binary = systemd_analyze()
    unit = runnable_unit(tmp_path)
    result = subprocess.run(
        [binary, "security", "--offline=yes", "--threshold=20", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Overall exposure level for connector.service" in result.stdout


def test_dockerfile_is_slim_non_root_and_health_checked() -> None:
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]-slim", text, re.M)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    # the uid deploy/k8s runs it as
    assert "--uid 10001" in text and "--gid 10001" in text
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M)
    assert 'ENTRYPOINT ["connector"]' in text and 'CMD ["run"]' in text
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for name in source.split():
            assert (REPO / name).exists(), (
                f"the Dockerfile copies {name}, which is not in the repository"
            )


def test_docker_image_keeps_the_mappings_when_etc_connector_is_mounted() -> None:
    """Nothing the connector needs is put in /etc/connector (a mounted folder hides it): the
    profiles are package data, and what connector/share links to is copied for the build."""
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    copied = [c.split() for c in re.findall(r"^COPY (?!--from)(.+)$", text, re.M)]
    assert all(not c[-1].startswith("/etc/connector") for c in copied)
    sources = {name for c in copied for name in c[:-1]}
    share = REPO / "connector" / "share"
    for link in share.iterdir():
        target = (share / link.readlink()).resolve().relative_to(REPO).as_posix()
        assert target in sources, f"connector/share/{link.name} -> {target}, not copied"


def test_the_commands_the_deployment_files_use_exist() -> None:
    runner = CliRunner()
    for command in ("run", "status", "sync", "check"):
        assert runner.invoke(main, [command, "--help"]).exit_code == 0


def test_the_readme_names_deploy_files_that_exist() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"\bdeploy/[\w-]+/[\w.-]*\w", readme))  # not kubectl deploy/NAME
    assert "deploy/prometheus/alerts.test.yaml" in named
    assert "deploy/grafana/connector.json" in named
    for name in named:
        assert (REPO / name).exists(), f"README names {name}, which is not in the repository"
