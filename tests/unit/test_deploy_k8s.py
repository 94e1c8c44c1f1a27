"""deploy/k8s/connector.yaml: valid against the Kubernetes API's schemas (offline, strict), and
what makes it work as written: no subPath (an edited ConfigMap reaches the pod), every claim
defined, a real image tag, a Service and scrape annotations that find the pod, one writer."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from connector.config import load_config
from tests.support.kubelet import ProjectedVolume
from tests.support.paths import REPO

MANIFEST = REPO / "deploy" / "k8s" / "connector.yaml"
DOCUMENTS: list[dict[str, Any]] = list(yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")))


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in DOCUMENTS if d["kind"] == kind]


def one(kind: str) -> dict[str, Any]:
    (document,) = of_kind(kind)
    return document


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


POD = one("Deployment")["spec"]["template"]
CONTAINER = POD["spec"]["containers"][0]
VOLUMES = {v["name"]: v for v in POD["spec"]["volumes"]}


@pytest.mark.parametrize("version", ["1.28.0", kubernetes_validate.latest_version()])
@pytest.mark.parametrize("index", range(len(DOCUMENTS)))
def test_every_document_is_valid_for_the_kubernetes_api(version: str, index: int) -> None:
    kubernetes_validate.validate(DOCUMENTS[index], version, strict=True)


def test_the_schema_check_would_catch_a_misspelt_field() -> None:
    deployment = yaml.safe_load(yaml.safe_dump(one("Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.28.0", strict=True)


def test_the_kinds_it_holds() -> None:
    assert sorted(d["kind"] for d in DOCUMENTS) == [
        "ConfigMap",
        "Deployment",
        "PersistentVolumeClaim",
        "PersistentVolumeClaim",
        "Secret",
        "Service",
    ]


def test_no_subpath_anywhere() -> None:
    """A subPath mount is a copy kubelet never updates: the daemon would never see an edit."""
    assert [key for key, _ in walk(DOCUMENTS) if key.lower() == "subpath"] == []


def test_config_and_secrets_are_one_projected_folder_where_the_config_is_read() -> None:
    config_path = Path(CONTAINER["args"][CONTAINER["args"].index("--config") + 1])
    mounts = {m["mountPath"]: m for m in CONTAINER["volumeMounts"]}
    mount = mounts[str(config_path.parent)]
    assert mount["readOnly"] is True
    sources = VOLUMES[mount["name"]]["projected"]["sources"]
    assert {"configMap": {"name": one("ConfigMap")["metadata"]["name"]}} in sources
    assert {"secret": {"name": one("Secret")["metadata"]["name"]}} in sources
    assert config_path.name in one("ConfigMap")["data"]


def test_every_claim_and_every_mounted_volume_is_defined() -> None:
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in VOLUMES.values()
        if "persistentVolumeClaim" in v
    }
    assert claims == {d["metadata"]["name"] for d in of_kind("PersistentVolumeClaim")}
    assert {m["name"] for m in CONTAINER["volumeMounts"]} == set(VOLUMES)


def test_one_writer_per_state_file() -> None:
    deployment = one("Deployment")["spec"]
    assert deployment["replicas"] == 1
    assert deployment["strategy"] == {"type": "Recreate"}
    mounts = {m["mountPath"]: m["name"] for m in CONTAINER["volumeMounts"]}
    state = VOLUMES[mounts["/var/lib/connector"]]["persistentVolumeClaim"]["claimName"]
    (claim,) = [c for c in of_kind("PersistentVolumeClaim") if c["metadata"]["name"] == state]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_the_image_is_tagged_with_the_version_not_latest() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    image = CONTAINER["image"]
    name, _, tag = image.rpartition(":")
    assert name.endswith("/connector") or name == "connector"
    assert tag == pyproject["project"]["version"]


def test_probes_resources_and_a_locked_down_container() -> None:
    assert CONTAINER["args"][-1] == "run"
    assert CONTAINER["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert CONTAINER["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert set(CONTAINER["resources"]) == {"requests", "limits"}
    pod = POD["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    container = CONTAINER["securityContext"]
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    # with a read-only root, /tmp is a volume of its own
    assert "/tmp" in {m["mountPath"] for m in CONTAINER["volumeMounts"]}


def test_the_service_and_the_scrape_annotations_find_the_health_port() -> None:
    labels = POD["metadata"]["labels"]
    deployment = one("Deployment")["spec"]
    assert deployment["selector"]["matchLabels"].items() <= labels.items()
    service = one("Service")["spec"]
    assert service["selector"].items() <= labels.items()
    (port,) = [p for p in CONTAINER["ports"] if p["name"] == "health"]
    (service_port,) = service["ports"]
    assert service_port["targetPort"] in (port["name"], port["containerPort"])
    annotations = POD["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port["containerPort"])
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_configmap_config_loads_as_kubelet_projects_it(tmp_path: Path) -> None:
    """The ConfigMap's connector.yaml, with the Secret's keys beside it: a valid config whose
    secrets, mapping, state and health port are where the Deployment puts them."""
    text = one("ConfigMap")["data"]["connector.yaml"]
    state = tmp_path / "var-lib-connector"
    state.mkdir()
    volume = ProjectedVolume(tmp_path / "etc-connector")
    volume.write(
        {
            "connector.yaml": text.replace("/var/lib/connector/", f"{state}/"),
            **one("Secret")["stringData"],
        }
    )
    config = load_config(volume.root / "connector.yaml")
    assert config.targets[0].token_file == volume.root / "scim-token"
    assert config.external_id.key_file == volume.root / "id-key"
    assert config.targets[0].mapping.is_file()  # builtin: not hidden by the mounted folder
    mounts = {m["mountPath"] for m in CONTAINER["volumeMounts"]}
    assert "/var/lib/connector/state.db" in text and "/var/lib/connector" in mounts
    for source in yaml.safe_load(text)["sources"]:
        if "path" in source:
            assert any(source["path"].startswith(f"{m}/") for m in mounts), source["path"]
    (port,) = [p["containerPort"] for p in CONTAINER["ports"] if p["name"] == "health"]
    assert config.health.listen == f"0.0.0.0:{port}"
