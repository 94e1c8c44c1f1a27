"""`connector history` and `explain REF`: from a log line's ref to a person, and everything the
connector did to them over a school year - against a real SCIM server, through the real CLI."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connector.config import load_config
from connector.cycle.run import Options, run_cycle
from connector.demo.localscim import free_port
from connector.planning.guard import approval_keys
from connector.state.store import StateStore
from connector.targets import build_targets
from tests.support.cli import CliResult, run_module
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ids import ID_KEY, opaque_id
from tests.support.paths import ILT_SCIM_MAPPING
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN, ScimPeek
from tests.support.workspace import Workspace

A, B = "11111111", "22222222"
EKEBY, BJORK = f"Ekeby skola ({A})", f"Björkängsgymnasiet ({B})"


def asa() -> list[str]:
    return student("E1", "Åsa", "Öberg", A, school_name="Ekeby skola")


def erik(school: str = A, family: str = "Lind", email: str | None = None) -> list[str]:
    name = "Ekeby skola" if school == A else "Björkängsgymnasiet"
    return student("E2", "Erik", family, school, school_name=name, email=email)


def marta() -> list[str]:
    return student("E3", "Märta", "Ström", B, school_name="Björkängsgymnasiet", school_type="GY")


def history(workspace: Workspace, query: str, *options: str) -> CliResult:
    return workspace.run("history", query, *options)


def entries(workspace: Workspace, query: str) -> list[tuple[str, tuple[str, ...], str, str]]:
    """(op, attributes, outcome, run id) of each row `history --json` lists, in its order."""
    result = history(workspace, query, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    return [
        (e["op"], tuple(e["attributes"]), e["outcome"], e["run_id"])
        for e in json.loads(result.stdout)["entries"]
    ]


def run_id(result: CliResult) -> str:
    assert result.exit_code == 0, result.stdout + result.stderr
    return str(result.event("sync.finished")["run_id"])


def age_deactivation(state_path: Path, days: int) -> None:
    when = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
    with sqlite3.connect(state_path) as db:
        db.execute("UPDATE users SET deactivated_at = ? WHERE deactivated_at IS NOT NULL", (when,))


def test_a_school_year_of_one_person_is_listed_change_by_change(
    workspace: Workspace, peek: ScimPeek
) -> None:
    # userName is set once (at create), so the e-mail can change apart from it.
    workspace.overrides["mapping"] = str(ILT_SCIM_MAPPING)
    workspace.students([asa(), erik(), marta()])
    august = run_id(workspace.sync())
    workspace.students(
        [asa(), erik(family="Lindberg", email="erik.lindberg@edu.example.se"), marta()]
    )
    october = run_id(workspace.sync())
    moved = erik(B, family="Lindberg", email="erik.lindberg@edu.example.se")
    workspace.students([asa(), moved, marta()])
    january = run_id(workspace.sync())
    workspace.students([asa(), marta()])
    june = run_id(workspace.sync())
    ref = opaque_id("E2")[:12]

    renamed = ("displayName", "emails", "name.familyName", "name.formatted")
    year = [
        ("create", None, "applied", august),
        ("member_add", (EKEBY,), "applied", august),
        ("update", renamed, "applied", october),
        ("member_add", (BJORK,), "applied", january),
        ("member_remove", (EKEBY,), "applied", january),
        ("member_remove", (BJORK,), "applied", june),
        ("deactivate", ("active",), "applied", june),
    ]
    listed = entries(workspace, ref)
    assert [(op, outcome, run) for op, _, outcome, run in listed] == [
        (op, outcome, run) for op, _, outcome, run in year
    ]
    assert [names for _, names, _, _ in listed][1:] == [names for _, names, _, _ in year][1:]
    assert {"userName", "emails", "name.givenName", "externalId", "active"} <= set(listed[0][1])
    # The account still holds the first userName and the new e-mail: both find the same trail.
    assert entries(workspace, "e2@edu.example.se") == listed
    assert entries(workspace, "Erik.Lindberg@edu.example.se") == listed
    text = history(workspace, ref)
    assert text.exit_code == 0
    assert f"default: user {opaque_id('E2')}" in text.stdout
    assert "TIME (UTC)" in text.stdout and "LOCAL TIME" in text.stdout
    assert "member_remove  Björkängsgymnasiet (22222222)" in text.stdout
    for value in ("Erik", "Lind", "erik.lindberg", "e2@"):  # names of attributes, no values
        assert value not in text.stdout

    age_deactivation(workspace.state_path, days=91)  # past the 90-day grace period
    september = run_id(workspace.sync())
    assert "e2@edu.example.se" not in peek.users()
    gone = entries(workspace, ref)
    assert gone[:-1] == listed and gone[-1] == ("delete", (), "applied", september)
    # The account is gone, and its names with it: only the ref finds its history now.
    assert history(workspace, "e2@edu.example.se").exit_code == 1
    assert "(no longer linked; its history is kept)" in history(workspace, ref).stdout


def test_a_ref_from_an_apply_line_leads_explain_and_history_to_the_person(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.overrides["safety"] = {"min_source_percent": 0, "retry_delay_seconds": 0}
    peek.create_user({"userName": "e1@edu.example.se"})
    second = peek.create_user({"userName": "asa-annan", "emails": [{"value": "e1@edu.example.se"}]})
    workspace.students([asa(), erik()])
    first = workspace.sync()
    conflict = first.event("apply.conflict")
    ref = conflict["ref"]
    assert len(ref) == 12 and ref == opaque_id("E1")[:12]

    explained = workspace.run("explain", ref)
    assert explained.exit_code == 0, explained.stdout + explained.stderr
    assert "student E1 (from students)" in explained.stdout
    assert f"externalId: {opaque_id('E1')}" in explained.stdout

    peek._http.delete(f"Users/{second['id']}").raise_for_status()  # the admin tidies up
    linked = run_id(workspace.sync())
    listed = entries(workspace, ref)
    assert [(op, outcome) for op, _, outcome, _ in listed] == [
        ("create", "conflict"),
        ("link", "applied"),
        ("member_add", "applied"),
    ]
    assert listed[0][3] == str(first.event("sync.finished")["run_id"])
    assert listed[1][3] == linked


def test_an_ambiguous_ref_lists_the_candidates_and_exits_2(workspace: Workspace) -> None:
    workspace.students([asa(), erik(), marta()])
    run_id(workspace.sync())
    with sqlite3.connect(workspace.state_path) as db:
        ours = db.execute("SELECT external_id FROM users WHERE target = 'default'").fetchone()[0]
        twin = ours[:12] + "f" * (len(ours) - 12) if not ours.endswith("f") else ours[:12] + "0"
        db.execute(
            "INSERT INTO history VALUES ('default', ?, '2025-01-01T00:00:00+00:00', 'update', "
            "'[]', 'applied', 'r1', NULL)",
            (twin,),
        )

    result = history(workspace, ours[:12])

    assert result.exit_code == 2
    assert ours in result.stdout and twin in result.stdout
    assert history(workspace, ours).exit_code == 0  # the whole externalId is never ambiguous


def test_a_person_who_becomes_protected_leaves_no_history(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students([asa(), erik(), marta()])
    workspace.sync()
    erik_id = opaque_id("E2")
    assert len(entries(workspace, erik_id[:12])) == 2  # created, added to Ekeby

    marked = student("E2", "Erik", "Lind", A, school_name="Ekeby skola", marking="Ja")
    workspace.students([asa(), marked, marta()])
    result = workspace.sync()

    assert result.exit_code == 0
    assert "e2@edu.example.se" not in peek.users()
    with sqlite3.connect(workspace.state_path) as db:
        assert db.execute(
            "SELECT count(*) FROM history WHERE external_id = ?", (erik_id,)
        ).fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM history").fetchone()[0] > 0  # others' stay
    state_bytes = b"".join(
        p.read_bytes() for p in workspace.root.iterdir() if p.name.startswith("state.db")
    )
    assert erik_id.encode() not in state_bytes  # not in free pages nor the WAL either
    assert opaque_id("E1").encode() in state_bytes  # (the search would find it)
    assert history(workspace, erik_id[:12]).exit_code == 1


def test_history_keeps_history_days_and_prunes_older_rows(workspace: Workspace) -> None:
    workspace.students([asa()])
    workspace.sync()
    ext = opaque_id("E1")
    old, recent = (
        (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        for days in (401, 399)
    )
    with sqlite3.connect(workspace.state_path) as db:
        for at in (old, recent):
            db.execute(
                "INSERT INTO history VALUES ('default', ?, ?, 'update', '[\"title\"]', "
                "'applied', 'old-run', NULL)",
                (ext, at),
            )

    result = workspace.sync()

    assert result.event("history.pruned") == {**result.event("history.pruned"), "rows": 1}
    assert [(op, run) for op, _, _, run in entries(workspace, ext)][:1] == [("update", "old-run")]
    assert len(entries(workspace, ext)) == 3  # the recent row, the create, the membership
    since = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%d")
    recent_only = json.loads(history(workspace, ext, "--since", since, "--json").stdout)
    assert [e["op"] for e in recent_only["entries"]] == ["create", "member_add"]
    workspace.overrides["state"] = {"path": str(workspace.state_path), "history_days": 30}
    workspace.sync()
    assert [op for op, _, _, _ in entries(workspace, ext)] == ["create", "member_add"]


def test_an_approved_change_shows_who_approved_it(
    workspace: Workspace, peek: ScimPeek, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.overrides["safety"] = {
        "min_source_percent": 0,
        "max_deactivations": {"count": 0, "percent": 0},
    }
    workspace.students([asa(), erik(), marta()])
    workspace.sync()
    workspace.students([asa(), marta()])
    assert workspace.sync().exit_code == 3  # Erik's deactivation is held
    state = StateStore.open(workspace.state_path)
    held = state.target("default").held_plan()
    assert held is not None
    with state.transaction():
        state._db.execute(
            "INSERT INTO approvals (id, target, held_run_id, keys, requested_by, requested_at, "
            "status) VALUES ('ap-7f3c', 'default', ?, '[]', 'anna.admin', ?, 'pending')",
            (held.run_id, datetime.now(UTC).isoformat(timespec="seconds")),
        )
    monkeypatch.setenv("TEST_SCIM_TOKEN", SCIM_TOKEN)
    config = load_config(workspace.config_path)
    targets = build_targets(config)
    try:
        options = Options(
            command="approve",
            approved={"default": approval_keys(held.plan)},
            approval_ids={"default": "ap-7f3c"},
        )
        run_cycle(config, targets, state, options)
    finally:
        for target in targets:
            target.close()
        state.close()

    assert peek.users()["e2@edu.example.se"]["active"] is False
    result = history(workspace, opaque_id("E2")[:12], "--json")
    rows = json.loads(result.stdout)["entries"]
    approved = [(e["op"], e["approval_id"], e["approved_by"]) for e in rows if e["approval_id"]]
    assert approved == [
        ("member_remove", "ap-7f3c", "anna.admin"),
        ("deactivate", "ap-7f3c", "anna.admin"),
    ]
    assert "ap-7f3c by anna.admin" in history(workspace, opaque_id("E2")[:12]).stdout
    assert all(e["approval_id"] is None for e in entries_of(workspace, "E1"))


def entries_of(workspace: Workspace, key: str) -> list[dict[str, Any]]:
    result = history(workspace, opaque_id(key))
    assert result.exit_code == 0
    return json.loads(history(workspace, opaque_id(key), "--json").stdout)["entries"]


def test_history_needs_no_secrets_and_runs_beside_a_daemon(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.overrides["external_id"] = {"key": "${TEST_ID_KEY}"}
    workspace.overrides["daemon"] = {"interval_seconds": 600}
    workspace.overrides["health"] = {"listen": f"127.0.0.1:{free_port()}"}
    workspace.students([asa(), erik()])
    workspace.write_config()
    daemon = DaemonProcess(workspace, {"TEST_SCIM_TOKEN": SCIM_TOKEN, "TEST_ID_KEY": ID_KEY})
    try:
        wait_for(lambda: len(peek.users()) == 2, what="the first cycle")
        wait_for(lambda: daemon.count("sync.finished") == 1, what="the cycle to be recorded")
        assert StateStore.lock_is_held(workspace.state_path)
        args = ("--config", str(workspace.config_path), "history")
        by_ref = run_module(*args, opaque_id("E2")[:12], env={"TEST_SCIM_TOKEN": ""})
        by_mail = run_module(*args, "e2@edu.example.se")
        by_key = run_module(*args, "E2")
    finally:
        assert daemon.stop() == 0
    assert by_ref.returncode == 0, by_ref.stderr
    assert "create" in by_ref.stdout and "member_add" in by_ref.stdout
    assert by_mail.returncode == 0 and by_mail.stdout == by_ref.stdout
    # A source key needs the externalId's secret key, which this shell does not have.
    assert by_key.returncode == 1
    assert "TEST_ID_KEY is not set" in by_key.stdout
    with_key = run_module(*args, "E2", env={"TEST_ID_KEY": ID_KEY})
    assert with_key.returncode == 0 and with_key.stdout == by_ref.stdout
