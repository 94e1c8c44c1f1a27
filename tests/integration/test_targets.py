"""Several targets from one config: one read of the sources serves every target, each with its
own mapping and its own part of the state file, and a target that is down leaves the others in
step."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.demo.localscim import LocalScimServer
from tests.fakes.faultproxy import FaultProxy
from tests.support.paths import DEFAULT_MAPPING
from tests.support.rosters import student
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

A, B = "11111111", "22222222"


class TwoTargets(Workspace):
    """A workspace whose config names targets instead of one vendor."""

    def __init__(self, root: Path, targets: list[dict[str, Any]]) -> None:
        super().__init__(root, targets[0]["base_url"])
        self.targets = targets

    def config(self) -> dict[str, Any]:
        config = super().config()
        del config["vendor"], config["mapping"]
        config["targets"] = self.targets
        return config


def tenant(server: LocalScimServer) -> str:
    return server.tenant_url("t" + uuid.uuid4().hex[:12])


@pytest.fixture
def two(tmp_path: Path, scim_server: LocalScimServer) -> Iterator[tuple[TwoTargets, FaultProxy]]:
    # Target "ilt" straight to the server, target "other" through a proxy that can take it down.
    other_mapping = tmp_path / "other.yaml"
    other_mapping.write_text(
        DEFAULT_MAPPING.read_text(encoding="utf-8").replace(
            'displayName: "{given_name} {family_name}"', 'displayName: "{family_name} {given_name}"'
        ),
        encoding="utf-8",
    )
    with FaultProxy(scim_server.root) as proxy:
        base = {"token": "${TEST_SCIM_TOKEN}", "max_retries": 1}
        targets = [
            {
                "name": "ilt",
                "base_url": tenant(scim_server),
                "mapping": str(DEFAULT_MAPPING),
                **base,
            },
            {
                "name": "other",
                "base_url": proxy.url_for(tenant(scim_server)),
                "mapping": str(other_mapping),
                **base,
            },
        ]
        workspace = TwoTargets(tmp_path, targets)
        workspace.students([student("E1", "Åsa", "Öberg", A), student("E2", "Erik", "Lind", B)])
        yield workspace, proxy


def peeks(workspace: TwoTargets) -> dict[str, ScimPeek]:
    return {t["name"]: ScimPeek(t["base_url"]) for t in workspace.targets}


def test_one_read_of_the_sources_serves_both_targets_each_with_its_own_mapping(
    two: tuple[TwoTargets, FaultProxy],
) -> None:
    workspace, _ = two

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout
    events = result.log_events()
    assert [e["source"] for e in events if e["event"] == "source.read"] == ["students"]
    finished = [e for e in events if e["event"] == "sync.finished"]
    assert [e["target"] for e in finished] == ["ilt", "other"]
    assert len({e["run_id"] for e in events if "run_id" in e}) == 1  # one cycle
    assert "== Target ilt" in result.stdout and "== Target other" in result.stdout
    servers = peeks(workspace)
    with servers["ilt"] as ilt, servers["other"] as other:
        assert ilt.users()["e1@edu.example.se"]["displayName"] == "Åsa Öberg"
        assert other.users()["e1@edu.example.se"]["displayName"] == "Öberg Åsa"
        assert ilt.member_names(ilt.groups()[B]) == {"e2@edu.example.se"}
        assert other.member_names(other.groups()[B]) == {"e2@edu.example.se"}
    with sqlite3.connect(workspace.state_path) as db:
        rows = dict(db.execute("SELECT target, count(*) FROM users GROUP BY target"))
    assert rows == {"ilt": 2, "other": 2}
    assert workspace.sync().event("sync.finished")["planned"] == {}


def test_a_target_that_is_down_leaves_the_other_in_step(
    two: tuple[TwoTargets, FaultProxy],
) -> None:
    workspace, proxy = two
    assert workspace.sync().exit_code == 0
    proxy.set_rates({"503": 1.0})  # the other vendor is down
    workspace.students([student("E1", "Åsa", "Öberg-Ek", A), student("E3", "Märta", "Ström", A)])

    down = workspace.sync()

    assert down.exit_code == 1, down.stdout
    outcomes = {
        e["target"]: e["outcome"] for e in down.log_events() if e["event"] == "sync.finished"
    }
    assert outcomes == {"ilt": "success", "other": "failed"}
    servers = peeks(workspace)
    with servers["ilt"] as ilt:
        users = ilt.users()
        assert users["e1@edu.example.se"]["name"]["familyName"] == "Öberg-Ek"
        assert "e3@edu.example.se" in users and users["e2@edu.example.se"]["active"] is False

    with sqlite3.connect(workspace.state_path) as db:
        # the vendor failed, not its objects: none of them waits for a later try
        assert list(db.execute("SELECT key FROM failures")) == []
    proxy.set_rates({})  # back: the next sync brings it up to date
    up = workspace.sync()

    assert up.exit_code == 0, up.stdout
    with servers["other"] as other:
        users = other.users()
        assert users["e1@edu.example.se"]["name"]["familyName"] == "Öberg-Ek"
        assert "e3@edu.example.se" in users and users["e2@edu.example.se"]["active"] is False


def test_approve_and_plan_name_their_target(two: tuple[TwoTargets, FaultProxy]) -> None:
    workspace, _ = two
    for target in workspace.targets:
        target["safety"] = {"max_deactivations": {"count": 0, "percent": 0}}
    workspace.targets[0]["safety"] = {}  # ilt: the defaults
    assert workspace.sync().exit_code == 0
    workspace.students([student("E1", "Åsa", "Öberg", A)])  # E2 leaves

    held = workspace.sync()

    assert held.exit_code == 3
    plan = workspace.run("plan", "--target", "other")
    assert "deactivate user: 1" in plan.stdout and "== Target" not in plan.stdout
    approved = workspace.run("approve", "--yes", "--target", "other")
    assert approved.exit_code == 0, approved.stdout
    assert "Nothing is held back." in workspace.run("approve", "--yes").stdout
