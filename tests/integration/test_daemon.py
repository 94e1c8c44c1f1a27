"""`connector run` as a real subprocess: cycles, reloads, signals, health, metrics, logs."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connector.demo.localscim import LocalScimServer, free_port
from tests.support.cli import run_module
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ldap import directory_source
from tests.support.paths import DEFAULT_MAPPING
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN, ScimPeek
from tests.support.workspace import Workspace

A = "11111111"
PROTECTED = ("Hemlig", "Skyddadsson", "hemlig.skyddadsson", "E666")


@pytest.fixture
def daemon_workspace(
    tmp_path: Path, scim_url: str, slapd_factory: Any
) -> Iterator[tuple[Workspace, Any]]:
    slapd = slapd_factory()
    slapd.add_ou("people")
    slapd.add_person(
        "karin",
        "Karin",
        "Sjöberg",
        mail="karin@edu.example.se",
        departmentNumber=[A],
        title="Lärare",
    )
    workspace = Workspace(tmp_path, scim_url)
    workspace.students(
        [
            student("E1", "Åsa", "Öberg", A),
            student("E2", "Erik", "Lind", A),
            student(
                "E666",
                "Hemlig",
                "Skyddadsson",
                A,
                marking="Ja",
                email="hemlig.skyddadsson@edu.example.se",
            ),
        ]
    )
    source = directory_source(slapd)
    source["password"] = "${TEST_LDAP_PASSWORD}"
    workspace.extra_sources = [source]
    workspace.overrides["daemon"] = {"interval_seconds": 1, "shutdown_timeout_seconds": 10}
    workspace.overrides["health"] = {
        "listen": f"127.0.0.1:{free_port()}",
        "ready_max_age_seconds": 30,
    }
    workspace.write_config()
    yield workspace, slapd


def last(daemon: DaemonProcess, name: str) -> dict[str, Any]:
    return [e for e in daemon.events() if e.get("event") == name][-1]


def test_daemon_syncs_reloads_and_stops_cleanly(
    daemon_workspace: tuple[Workspace, Any], peek: ScimPeek
) -> None:
    workspace, slapd = daemon_workspace
    health = "http://" + workspace.config()["health"]["listen"]
    env = {"TEST_SCIM_TOKEN": SCIM_TOKEN, "TEST_LDAP_PASSWORD": slapd.service_password}
    daemon = DaemonProcess(workspace, env)
    try:
        wait_for(lambda: len(peek.users()) == 3, what="the first cycle")
        assert httpx.get(f"{health}/healthz").status_code == 200
        wait_for(lambda: httpx.get(f"{health}/readyz").status_code == 200, what="readiness")
        metrics = httpx.get(f"{health}/metrics").text
        assert 'connector_cycles_total{outcome="success",target="default"}' in metrics
        assert (
            'connector_persons_excluded{reason="protected identity",target="default"} 1.0'
            in metrics
        )

        # a second process against the same state refuses clearly
        second = run_module("--config", str(workspace.config_path), "sync", env=env, timeout=60)
        assert second.returncode != 0
        assert "another connector process is using the state file" in second.stderr

        # an edited roster reaches the server within a few intervals
        workspace.students([student("E1", "Åsa", "Öberg-Ek", A), student("E2", "Erik", "Lind", A)])
        wait_for(
            lambda: peek.users()["e1@edu.example.se"]["name"]["familyName"] == "Öberg-Ek",
            what="the rename",
        )
        assert (
            'connector_operations_total{result="users_updated",target="default"} 1.0'
            in httpx.get(f"{health}/metrics").text
        )

        # a broken config is rejected on SIGHUP; the daemon syncs on with the old one
        good_config = workspace.config_path.read_text(encoding="utf-8")
        workspace.config_path.write_text("vendor: [this is not: valid\n", encoding="utf-8")
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(lambda: daemon.count("config.rejected") >= 1, what="config.rejected")
        workspace.students([student("E1", "Åsa", "Öberg-Ek", A), student("E2", "Erika", "Lind", A)])
        wait_for(
            lambda: peek.users()["e2@edu.example.se"]["name"]["givenName"] == "Erika",
            what="sync after rejection",
        )
        assert daemon.process.poll() is None

        # a valid change is picked up without a signal (the file is watched while idle)
        config = yaml.safe_load(good_config)
        config["daemon"]["interval_seconds"] = 2
        workspace.config_path.write_text(
            yaml.safe_dump(config, allow_unicode=True), encoding="utf-8"
        )
        wait_for(lambda: daemon.count("config.reloaded") >= 1, what="config.reloaded")
        assert last(daemon, "config.reloaded")["changed"] == ["daemon.interval_seconds"]
        assert last(daemon, "config.reloaded")["mapping_changed"] is False

        # ...and so is a mapping file whose content changed: the event says so
        mapping = workspace.root / "mapping.yaml"
        mapping.write_text(DEFAULT_MAPPING.read_text(encoding="utf-8"), encoding="utf-8")
        config["mapping"] = str(mapping)
        workspace.config_path.write_text(
            yaml.safe_dump(config, allow_unicode=True), encoding="utf-8"
        )
        wait_for(lambda: daemon.count("config.reloaded") >= 2, what="a new mapping path")
        assert last(daemon, "config.reloaded")["changed"] == ["mapping"]
        mapping.write_text(
            DEFAULT_MAPPING.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8"
        )
        wait_for(lambda: daemon.count("config.reloaded") >= 3, what="an edited mapping")
        reloaded = last(daemon, "config.reloaded")
        assert (reloaded["changed"], reloaded["mapping_changed"]) == ([], True)
    finally:
        exit_code = daemon.stop()

    assert exit_code == 0
    assert daemon.stray_lines() == []  # every line is JSON
    events = daemon.events()
    assert events[-1]["event"] == "daemon.stopped"
    daemon_level = {
        "daemon.started",
        "daemon.stopping",
        "daemon.stopped",
        "health.listening",
        "config.rejected",
        "config.reloaded",
        "config.restart_needed",
    }
    for event in events:
        assert "event" in event
        if event["event"] not in daemon_level:
            assert event.get("run_id"), event
    text = daemon.log_path.read_text(encoding="utf-8")
    assert SCIM_TOKEN not in text
    assert slapd.service_password not in text
    for secret in PROTECTED:
        assert secret not in text
    with sqlite3.connect(workspace.state_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        unfinished = db.execute("SELECT count(*) FROM runs WHERE finished_at IS NULL").fetchone()[0]
        assert unfinished == 0
    status = run_module("--config", str(workspace.config_path), "status", env=env, timeout=60)
    assert "Daemon: not running" in status.stdout
    assert "created 3" in status.stdout


def test_readyz_turns_unhealthy_when_the_vendor_is_down(tmp_path: Path) -> None:
    with LocalScimServer(SCIM_TOKEN) as vendor:
        workspace = Workspace(tmp_path, vendor.base_url)
        workspace.students([student("E1", "Åsa", "Öberg", A)])
        listen = f"127.0.0.1:{free_port()}"
        workspace.overrides["daemon"] = {"interval_seconds": 1}
        workspace.overrides["health"] = {"listen": listen, "ready_max_age_seconds": 3}
        workspace.overrides["vendor"] = {
            **workspace.config()["vendor"],
            "max_retries": 0,
            "timeout_seconds": 2,
        }
        workspace.write_config()
        daemon = DaemonProcess(workspace, {"TEST_SCIM_TOKEN": SCIM_TOKEN})
        try:
            wait_for(
                lambda: httpx.get(f"http://{listen}/readyz").status_code == 200, what="readiness"
            )
            vendor.stop()
            workspace.students([student("E1", "Åsa", "Öberg-Ek", A)])  # something to send
            response = wait_for(
                lambda: (r := httpx.get(f"http://{listen}/readyz")).status_code == 503 and r,
                timeout=30,
                what="readyz to fail",
            )
            # too old, or degraded (3 failing cycles in a row): whichever comes first
            assert "last successful cycle was" in response.text or "degraded" in response.text
            wait_for(
                lambda: (
                    'connector_degraded{target="default"} 1.0'
                    in httpx.get(f"http://{listen}/metrics").text
                ),
                timeout=30,
                what="the degraded metric",
            )
            assert httpx.get(f"http://{listen}/healthz").status_code == 200
            assert (
                'connector_cycles_total{outcome="failed",target="default"}'
                in httpx.get(f"http://{listen}/metrics").text
            )
        finally:
            assert daemon.stop() == 0


def test_metrics_count_the_last_cycle_and_status_shows_the_next_run(
    tmp_path: Path, scim_url: str
) -> None:
    workspace = Workspace(tmp_path, scim_url)
    workspace.students([student("E1", "Åsa", "Öberg", A), student("E2", "Erik", "Lind", A)])
    listen = f"127.0.0.1:{free_port()}"
    workspace.overrides["daemon"] = {"interval_seconds": 600}
    workspace.overrides["health"] = {"listen": listen}
    workspace.write_config()
    env = {"TEST_SCIM_TOKEN": SCIM_TOKEN}
    daemon = DaemonProcess(workspace, env)
    try:
        wait_for(lambda: httpx.get(f"http://{listen}/readyz").status_code == 200, what="readiness")
        metrics = httpx.get(f"http://{listen}/metrics").text
        assert (
            'connector_last_cycle_operations{result="users_created",target="default"} 2.0'
            in metrics
        )
        assert (
            'connector_last_cycle_operations{result="members_added",target="default"} 2.0'
            in metrics
        )
        assert 'connector_users_in_scope{target="default"} 2.0' in metrics
        assert 'connector_source_up{source="students"} 1.0' in metrics
        status = run_module("--config", str(workspace.config_path), "status", env=env, timeout=60)
        assert f"Daemon: running (pid {daemon.process.pid})" in status.stdout
        assert "Next cycle:" in status.stdout
        assert "created 2, +members 2" in status.stdout
    finally:
        assert daemon.stop() == 0
