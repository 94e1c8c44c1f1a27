"""`connector run` with its config and secrets in a folder kubelet keeps up to date (the
projected volume of deploy/k8s/connector.yaml): an edited ConfigMap is reloaded without a
restart, and the daemon syncs on after kubelet removed the folder it started from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from connector.demo.localscim import free_port
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ids import ID_KEY
from tests.support.kubelet import ProjectedVolume
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN, ScimPeek
from tests.support.workspace import Workspace


def volume_files(workspace: Workspace, interval: int, port: int) -> dict[str, str | bytes]:
    """The ConfigMap's connector.yaml (secrets as files beside it, a built-in mapping) and the
    Secret's keys, as kubelet projects them into one folder."""
    config: dict[str, Any] = {
        **workspace.config(),
        "mapping": "builtin:default",
        "external_id": {"key_file": "id-key"},
        "daemon": {"interval_seconds": interval, "shutdown_timeout_seconds": 10},
        "health": {"listen": f"127.0.0.1:{port}"},
    }
    config["vendor"] = {
        **{k: v for k, v in config["vendor"].items() if k != "token"},
        "token_file": "scim-token",
    }
    return {
        "connector.yaml": yaml.safe_dump(config, allow_unicode=True),
        "scim-token": SCIM_TOKEN,
        "id-key": ID_KEY,
    }


def test_an_updated_configmap_is_reloaded_without_a_restart(
    tmp_path: Path, scim_url: str, peek: ScimPeek
) -> None:
    workspace = Workspace(tmp_path, scim_url)
    workspace.students([student("E1", "Åsa", "Berg"), student("E2", "Erik", "Lind")])
    volume = ProjectedVolume(tmp_path / "etc-connector")
    port = free_port()
    volume.write(volume_files(workspace, 1, port))
    first = volume.timestamped_folder()
    workspace.config_path = volume.root / "connector.yaml"
    daemon = DaemonProcess(workspace, {})
    try:
        wait_for(lambda: len(peek.users()) == 2, what="the first cycle")
        # `kubectl apply` of the edited ConfigMap: kubelet swaps the folder
        volume.write(volume_files(workspace, 2, port))
        wait_for(lambda: daemon.count("config.reloaded") >= 1, what="config.reloaded")
        reloaded = [e for e in daemon.events() if e["event"] == "config.reloaded"][-1]
        assert reloaded["changed"] == ["daemon.interval_seconds"]
        assert reloaded["mapping_changed"] is False
        # the folder the daemon started from is gone; it syncs on (the token and the key are
        # read through the volume's links, not from the removed folder)
        assert not first.exists()
        workspace.students(
            [
                student("E1", "Åsa", "Berg"),
                student("E2", "Erik", "Lind"),
                student("E3", "Ida", "Ek"),
            ]
        )
        wait_for(lambda: len(peek.users()) == 3, what="a sync after the swap")
        assert daemon.process.poll() is None
    finally:
        exit_code = daemon.stop()
    assert exit_code == 0
    assert daemon.stray_lines() == []
    assert daemon.count("config.reloaded") == 1  # once per change, not once per check
    assert "No such file" not in daemon.log_path.read_text(encoding="utf-8")
