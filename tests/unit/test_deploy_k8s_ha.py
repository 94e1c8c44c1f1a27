"""deploy/k8s/connector-ha.yaml: two replicas on a PostgreSQL state, valid against the
Kubernetes API's schemas (offline, strict); a disruption budget that keeps one; the database's
password from the Secret, never in the ConfigMap; no state volume (the state is the database)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from connector.config import load_config
from tests.support.kubelet import ProjectedVolume
from tests.support.paths import REPO

MANIFEST = REPO / "deploy" / "k8s" / "connector-ha.yaml"
DOCUMENTS: list[dict[str, Any]] = list(yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")))


def one(kind: str) -> dict[str, Any]:
    (document,) = [d for d in DOCUMENTS if d["kind"] == kind]
    return document


DEPLOYMENT = one("Deployment")
POD = DEPLOYMENT["spec"]["template"]
CONTAINER = POD["spec"]["containers"][0]


@pytest.mark.parametrize("version", ["1.28.0", kubernetes_validate.latest_version()])
@pytest.mark.parametrize("index", range(len(DOCUMENTS)))
def test_every_document_is_valid_for_the_kubernetes_api(version: str, index: int) -> None:
    kubernetes_validate.validate(DOCUMENTS[index], version, strict=True)


def test_two_replicas_and_a_budget_that_keeps_one() -> None:
    assert DEPLOYMENT["spec"]["replicas"] == 2
    budget = one("PodDisruptionBudget")["spec"]
    assert budget["minAvailable"] == 1
    assert budget["selector"]["matchLabels"].items() <= POD["metadata"]["labels"].items()
    assert not [d for d in DOCUMENTS if d["kind"] == "PersistentVolumeClaim" and "state" in str(d)]


def test_the_config_loads_with_the_database_password_from_the_secret(tmp_path: Path) -> None:
    text = one("ConfigMap")["data"]["connector.yaml"]
    volume = ProjectedVolume(tmp_path / "etc-connector")
    volume.write({"connector.yaml": text, **one("Secret")["stringData"]})
    config = load_config(volume.root / "connector.yaml")
    assert config.state.url is not None and config.state.url.startswith("postgresql://")
    assert "sslmode=verify-full" in config.state.url
    assert config.state.password_file == volume.root / "db-password"
    assert config.state.password_value() == one("Secret")["stringData"]["db-password"]
    assert "replace-with-the-database-password" not in text
    mounts = {m["mountPath"] for m in CONTAINER["volumeMounts"]}
    assert "/etc/connector" in mounts and "/var/lib/connector" not in mounts
