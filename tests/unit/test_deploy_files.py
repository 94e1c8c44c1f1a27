"""The deployment files parse and point at the real command, options and paths."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from connector.cli import main
from connector.config import Config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


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
    assert command[0].endswith("/bin/connector")
    assert command[1:] == ["--config", "/etc/connector/connector.yaml", "run"]
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["StateDirectory"] == ["connector"]
    assert service["DynamicUser"] == ["yes"] or service.get("User")
    credentials = {c.split(":")[0] for c in service["LoadCredential"]}
    assert credentials == {"scim-token", "id-key", "ldap-password"}
    assert "ExecReload" in service and "-HUP" in service["ExecReload"][0]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_dockerfile_is_slim_non_root_and_health_checked() -> None:
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]-slim", text, re.M)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M)
    assert 'ENTRYPOINT ["connector"]' in text and 'CMD ["run"]' in text
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for name in source.split():
            assert (REPO / name).exists(), (
                f"the Dockerfile copies {name}, which is not in the repository"
            )


def test_kubernetes_manifests_run_one_replica_with_probes() -> None:
    documents = list(yaml.safe_load_all((DEPLOY / "k8s" / "connector.yaml").read_text()))
    by_kind = {d["kind"]: d for d in documents}
    assert {"Secret", "ConfigMap", "PersistentVolumeClaim", "Deployment"} <= set(by_kind)
    deployment = by_kind["Deployment"]["spec"]
    assert deployment["replicas"] == 1
    assert deployment["strategy"]["type"] == "Recreate"
    container = deployment["template"]["spec"]["containers"][0]
    assert container["args"][-1] == "run"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/var/lib/connector" in mounts
    # the ConfigMap's config is a valid connector config, with its state in the mounted volume
    config = Config.model_validate(yaml.safe_load(by_kind["ConfigMap"]["data"]["connector.yaml"]))
    assert str(config.state.path).startswith("/var/lib/connector/")
    assert config.health.listen and config.health.listen.endswith(":9464")
    assert str(config.mapping) == "/etc/connector/mappings/default.yaml"
    assert "COPY mappings /etc/connector/mappings" in (DEPLOY / "docker" / "Dockerfile").read_text()


def test_the_commands_the_deployment_files_use_exist() -> None:
    runner = CliRunner()
    for command in ("run", "status", "sync", "check"):
        assert runner.invoke(main, [command, "--help"]).exit_code == 0
