"""A config file the running daemon rejects shows: in /metrics, in `status`, and goes away
after a good reload."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import yaml

from connector.demo.localscim import free_port
from tests.support.cli import run_module
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN
from tests.support.workspace import Workspace

A = "11111111"
BAD_TOKEN = "s3cret pasted with a space"


def metric(listen: str, line: str) -> bool:
    return line in httpx.get(f"http://{listen}/metrics").text.splitlines()


def test_a_rejected_config_shows_until_a_good_one_is_loaded(tmp_path: Path, scim_url: str) -> None:
    workspace = Workspace(tmp_path, scim_url)
    workspace.students([student("E1", "Åsa", "Öberg", A)])
    listen = f"127.0.0.1:{free_port()}"
    workspace.overrides["daemon"] = {"interval_seconds": 600, "watch_files": False}
    workspace.overrides["health"] = {"listen": listen}
    workspace.write_config()
    good = workspace.config_path.read_text(encoding="utf-8")
    env = {"TEST_SCIM_TOKEN": SCIM_TOKEN}
    daemon = DaemonProcess(workspace, env)

    def status() -> str:
        result = run_module("--config", str(workspace.config_path), "status", env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout + result.stderr

    try:
        wait_for(lambda: httpx.get(f"http://{listen}/readyz").status_code == 200, what="ready")
        assert metric(listen, "connector_config_rejected 0.0")
        assert "Config rejected" not in status()

        broken = yaml.safe_load(good)
        broken["vendor"]["token"] = BAD_TOKEN  # a secret that fails its rule
        workspace.config_path.write_text(yaml.safe_dump(broken), encoding="utf-8")
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(lambda: metric(listen, "connector_config_rejected 1.0"), what="the gauge")
        assert metric(listen, 'connector_config_reloads_total{result="rejected"} 1.0')
        shown = status()
        assert "Config rejected at " in shown and " UTC (" in shown
        assert "vendor.token: must be printable ASCII" in shown
        assert "Daemon: running" in shown

        workspace.config_path.write_text(good, encoding="utf-8")
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(lambda: metric(listen, "connector_config_rejected 0.0"), what="the gauge at 0")
        assert metric(listen, 'connector_config_reloads_total{result="applied"} 1.0')
        assert "Config rejected" not in status()
        assert BAD_TOKEN not in shown + httpx.get(f"http://{listen}/metrics").text
    finally:
        assert daemon.stop() == 0
    assert daemon.stray_lines() == []
    assert daemon.count("config.rejected") == 1
    assert BAD_TOKEN not in daemon.log_path.read_text(encoding="utf-8")
