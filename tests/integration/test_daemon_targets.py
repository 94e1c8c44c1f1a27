"""One daemon (`connector run`), three targets: two SCIM vendors with different mappings and
Inläsningstjänst's file. Each cycle reads the sources once and serves every target; a vendor
that is down leaves the others in step, and the daemon goes on."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from connector.demo.localscim import LocalScimServer, free_port
from tests.fakes.faultproxy import FaultProxy
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.paths import DEFAULT_MAPPING, ILT_FILE_MAPPING
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN, ScimPeek
from tests.support.workspace import Workspace

A = "11111111"


class TargetsWorkspace(Workspace):
    """A workspace whose config names its targets (in `overrides`) instead of one vendor."""

    def config(self) -> dict[str, Any]:
        config = super().config()
        del config["vendor"], config["mapping"]
        return config


def tenant(server: LocalScimServer) -> str:
    return server.tenant_url("t" + uuid.uuid4().hex[:12])


def userNames(url: str) -> dict[str, dict]:
    with ScimPeek(url) as peek:
        return peek.users()


def test_one_daemon_serves_two_vendors_and_a_file_from_one_read_each_cycle(
    tmp_path: Path, scim_server: LocalScimServer
) -> None:
    other_mapping = tmp_path / "other.yaml"
    other_mapping.write_text(
        DEFAULT_MAPPING.read_text(encoding="utf-8").replace(
            'displayName: "{given_name} {family_name}"', 'displayName: "{family_name} {given_name}"'
        ),
        encoding="utf-8",
    )
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    listen = f"127.0.0.1:{free_port()}"
    with FaultProxy(scim_server.root) as proxy:
        scim_url, other_url = tenant(scim_server), proxy.url_for(tenant(scim_server))
        workspace = TargetsWorkspace(tmp_path, scim_url)
        workspace.students([student("E1", "Åsa", "Öberg", A), student("E2", "Erik", "Lind", A)])
        common = {"token": "${TEST_SCIM_TOKEN}", "max_retries": 0}
        workspace.overrides = {
            "targets": [
                {"name": "scim", "base_url": scim_url, "mapping": str(DEFAULT_MAPPING), **common},
                {
                    "name": "other",
                    "base_url": other_url,
                    "mapping": str(other_mapping),
                    # Degraded after one failing cycle: the others must not slow down with it.
                    "safety": {"degraded_after_cycles": 1},
                    **common,
                },
                {
                    "name": "ilt-file",
                    "kind": "file",
                    "mapping": str(ILT_FILE_MAPPING),
                    "delivery": {"method": "local", "directory": str(outbox)},
                },
            ],
            "daemon": {"interval_seconds": 1, "shutdown_timeout_seconds": 10},
            "health": {"listen": listen},
        }
        workspace.write_config()
        daemon = DaemonProcess(workspace, {"TEST_SCIM_TOKEN": SCIM_TOKEN})
        try:
            wait_for(lambda: "e2@edu.example.se" in userNames(scim_url), what="first sync")
            wait_for(lambda: "e2@edu.example.se" in userNames(other_url), what="other vendor")
            assert userNames(scim_url)["e1@edu.example.se"]["displayName"] == "Åsa Öberg"
            assert userNames(other_url)["e1@edu.example.se"]["displayName"] == "Öberg Åsa"
            wait_for(lambda: (outbox / "users.csv").exists(), what="the file")
            assert b"e2@edu.example.se" in (outbox / "users.csv").read_bytes()
            wait_for(lambda: daemon.count("sync.finished") >= 6, what="two cycles")

            proxy.set_rates({"503": 1.0})  # the other vendor goes down
            workspace.students(
                [
                    student("E1", "Åsa", "Öberg", A),
                    student("E2", "Erik", "Lind", A),
                    student("E3", "Märta", "Ström", A),
                ]
            )
            wait_for(lambda: "e3@edu.example.se" in userNames(scim_url), what="E3 at scim")
            wait_for(
                lambda: b"e3@edu" in (outbox / "users.csv").read_bytes(), what="E3 in the file"
            )
            wait_for(
                lambda: (
                    'connector_cycles_total{outcome="failed",target="other"}'
                    in httpx.get(f"http://{listen}/metrics").text
                ),
                what="the other target's failure in the metrics",
            )
            # E3's arrival is counted once for each target that has it (the file too), under
            # the roster's name; the vendor that is down has nothing to count.
            latency = 'connector_change_latency_seconds_count{{source="students",target="{}"}} 1.0'
            wait_for(
                lambda: all(
                    latency.format(name) in httpx.get(f"http://{listen}/metrics").text
                    for name in ("scim", "ilt-file")
                ),
                what="E3's change counted for the SCIM vendor and the file",
            )
            assert 'latency_seconds_count{source="students",target="other"}' not in (
                httpx.get(f"http://{listen}/metrics").text
            )
            # The other vendor is degraded now; the healthy targets keep their interval (1 s)
            # rather than slowing down with it (2, 4, 8 s... would give 3 cycles at most).
            degraded_at = daemon.count("sync.finished")
            wait_for(
                lambda: daemon.count("sync.finished") >= degraded_at + 3 * 5,
                timeout=12,
                what="five more cycles at the configured interval",
            )
            assert daemon.process.poll() is None  # still running
        finally:
            assert daemon.stop() == 0

    events = daemon.events()
    cycles = {e["run_id"] for e in events if e.get("event") == "sync.finished"}
    # Each cycle looks at the roster once: parsed, or found unchanged (cycle/quiet.py).
    looked = ("source.read", "source.unchanged")
    reads = Counter(e["run_id"] for e in events if e.get("event") in looked)
    finished = Counter(e["run_id"] for e in events if e.get("event") == "sync.finished")
    assert len(cycles) >= 3
    assert all(reads[run] == 1 for run in cycles), reads
    assert all(finished[run] == 3 for run in cycles), finished  # serving all three targets
    outcomes = {(e["target"], e["outcome"]) for e in events if e.get("event") == "sync.finished"}
    assert ("other", "failed") in outcomes and ("scim", "failed") not in outcomes
    # The other vendor missed E3 while it was down (the next cycle after it is back sends it).
    assert "e3@edu.example.se" not in userNames(other_url.replace(proxy.root, scim_server.root))
