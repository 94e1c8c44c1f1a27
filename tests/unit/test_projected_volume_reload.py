"""A config in a Kubernetes projected volume (deploy/k8s/connector.yaml): kubelet swaps the
`..data` link, and the daemon's watch of the config file sees the new file, even one of the
same size written within the same clock tick as the old."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from connector.config import load_config
from connector.config.builtin import BUILTIN_MAPPINGS
from connector.service.reload import fingerprint, watched_files
from tests.support.kubelet import ProjectedVolume


def config_text(interval: int, state: Path) -> str:
    config: dict[str, Any] = {
        "vendor": {"base_url": "https://scim.vendor.example/v2", "token_file": "scim-token"},
        "state": {"path": str(state / "state.db")},
        "mapping": "builtin:default",
        "external_id": {"key_file": "id-key"},
        "sources": [
            {
                "name": "students",
                "type": "csv",
                "kind": "student",
                "path": "/srv/exports/elever.csv",
                "columns": {
                    "key": "Elev-ID",
                    "given_name": "Förnamn",
                    "family_name": "Efternamn",
                    "email": "E-post",
                    "school_unit_code": "Skolenhetskod",
                },
                "protected_identity": {"column": "Skyddad", "not_protected_values": ["Nej"]},
            }
        ],
        "daemon": {"interval_seconds": interval},
    }
    return yaml.safe_dump(config, allow_unicode=True)


def test_the_kubelet_swap_is_seen_and_the_new_config_read(tmp_path: Path) -> None:
    volume = ProjectedVolume(tmp_path / "etc-connector")
    secrets = {"scim-token": "token-one", "id-key": "k" * 32}
    volume.write({"connector.yaml": config_text(60, tmp_path), **secrets})
    path = volume.root / "connector.yaml"
    config = load_config(path)
    assert config.daemon.interval_seconds == 60
    # relative secret files are beside the config, read through the link (a rotation is seen)
    assert config.targets[0].token_file == volume.root.resolve() / "scim-token"
    assert config.targets[0].bearer_token() == "token-one"
    assert config.targets[0].mapping == BUILTIN_MAPPINGS / "default.yaml"
    before = fingerprint(*watched_files(path, config))
    old = path.stat()

    # the same size, and (a coarse file system clock) the same modification time
    volume.write(
        {"connector.yaml": config_text(90, tmp_path), **secrets, "scim-token": "token-two"}
    )
    new_file = volume.timestamped_folder() / "connector.yaml"
    os.utime(new_file, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (old.st_size, old.st_mtime_ns)

    assert fingerprint(*watched_files(path, config)) != before
    reloaded = load_config(path)
    assert reloaded.daemon.interval_seconds == 90
    assert reloaded.targets[0].bearer_token() == "token-two"


def test_an_unchanged_volume_is_not_a_change(tmp_path: Path) -> None:
    volume = ProjectedVolume(tmp_path / "etc-connector")
    volume.write({"connector.yaml": config_text(60, tmp_path), "scim-token": "t", "id-key": "k"})
    path = volume.root / "connector.yaml"
    config = load_config(path)
    assert fingerprint(*watched_files(path, config)) == fingerprint(*watched_files(path, config))


def test_the_simulated_kubelet_keeps_only_the_current_files(tmp_path: Path) -> None:
    volume = ProjectedVolume(tmp_path / "v")
    volume.write({"a.yaml": "one", "b": "x"})
    first = volume.timestamped_folder()
    volume.write({"a.yaml": "two"})
    assert not first.exists()
    assert sorted(p.name for p in volume.root.iterdir() if not p.name.startswith("..")) == [
        "a.yaml"
    ]
    assert (volume.root / "a.yaml").read_text() == "two"
    assert (volume.root / "..data").is_symlink()
