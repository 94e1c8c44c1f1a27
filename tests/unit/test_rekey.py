"""Re-keying (connector.planning.rekey, and what plan and guard make of it), without a server.

A re-key moves a gone person's account to a new person with the same names. Each case is one
a wrong rule would get wrong: the account still wanted by its own person, held, protected or
scrubbed; two gone accounts for one new person, two new persons for one account; an account
deactivated cycles ago; and the plan that follows: one PATCH of the same vendor id, no create,
no deactivation, memberships carried over rather than removed and added.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from connector.planning.guard import approval_keys, hold_for_rekeys, split_approved
from connector.planning.objects import DesiredGroup, DesiredUser, Known, KnownGroup, KnownUser
from connector.planning.plan import Operation, Plan, make_plan
from connector.planning.rekey import Rekey, find_rekeys, fingerprint, protected_accounts
from connector.state.store import StateStore

A, B = "11111111", "22222222"


def attributes(ext: str, name: str, email: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"externalId": ext, "active": True, "userName": name}
    if email:
        found["emails"] = [{"value": email, "type": "work", "primary": True}]
    return found


def desired(ext: str, name: str, email: str | None = None) -> DesiredUser:
    return DesiredUser(ext, attributes(ext, name, email))


def known_user(ext: str, name: str, email: str | None = None, active: bool = True) -> KnownUser:
    recorded = attributes(ext, name, email)
    recorded["active"] = active
    return KnownUser(ext, f"v-{ext}", "created", active, recorded)


def test_a_new_person_with_a_gone_persons_names_is_a_candidate() -> None:
    users = {"new": desired("new", "Asa@Edu.example.se", "asa@edu.example.se")}
    known = Known(users={"old": known_user("old", "asa@edu.example.se", "ASA@edu.example.se")})
    found = find_rekeys(users, known)
    assert found.candidates == [Rekey("old", "new", "emails.value, userName")]
    assert found.ambiguous == []


def test_an_account_deactivated_cycles_ago_is_a_candidate_too() -> None:
    users = {"new": desired("new", "asa@edu.example.se")}
    known = Known(users={"old": known_user("old", "asa@edu.example.se", active=False)})
    assert find_rekeys(users, known).by_new() == {"new": Rekey("old", "new", "userName")}


def test_no_candidate_unless_the_account_is_gone_and_free() -> None:
    users = {"new": desired("new", "asa@edu.example.se")}
    old = known_user("old", "asa@edu.example.se")
    # still wanted by its own person (a clash of userNames, not a re-key)
    wanted = {**users, "old": desired("old", "asa@edu.example.se")}
    assert find_rekeys(wanted, Known(users={"old": old})).candidates == []
    # held (unreadable this cycle) or protected
    assert find_rekeys(users, Known(users={"old": old}), keep=frozenset({"old"})).candidates == []
    protected = frozenset({"old"})
    assert find_rekeys(users, Known(users={"old": old}), protected=protected).candidates == []
    # scrubbed (protected earlier): no names left to match
    scrubbed = KnownUser("old", "v-old", "created", False, {"active": False})
    assert find_rekeys(users, Known(users={"old": scrubbed})).candidates == []
    # the new person already has an account of their own
    both = Known(users={"old": old, "new": known_user("new", "other@edu.example.se")})
    assert find_rekeys(users, both).candidates == []


def test_names_must_match_on_the_same_path() -> None:
    users = {"new": desired("new", "someone", "asa@edu.example.se")}
    known = Known(users={"old": known_user("old", "asa@edu.example.se")})
    assert find_rekeys(users, known).candidates == []


def test_one_new_person_and_two_gone_accounts_is_ambiguous() -> None:
    users = {"new": desired("new", "asa@edu.example.se", "asa.oberg@edu.example.se")}
    known = Known(
        users={
            "old1": known_user("old1", "asa@edu.example.se"),
            "old2": known_user("old2", "x", "asa.oberg@edu.example.se"),
        }
    )
    found = find_rekeys(users, known)
    assert found.candidates == []
    assert [(a.new, a.old) for a in found.ambiguous] == [(("new",), ("old1", "old2"))]


def test_two_new_persons_and_one_gone_account_is_ambiguous() -> None:
    users = {
        "new1": desired("new1", "asa@edu.example.se"),
        "new2": desired("new2", "x", "asa@edu.example.se"),
        "free": desired("free", "erik@edu.example.se"),
    }
    known = Known(
        users={
            "old": known_user("old", "asa@edu.example.se", "asa@edu.example.se"),
            "erik": known_user("erik", "erik@edu.example.se"),
        }
    )
    found = find_rekeys(users, known)
    assert found.candidates == [Rekey("erik", "free", "userName")]
    assert [(a.new, a.old) for a in found.ambiguous] == [(("new1", "new2"), ("old",))]


def test_an_account_with_a_protected_persons_names_is_theirs() -> None:
    users = {"kept": desired("kept", "erik@edu.example.se")}
    known = Known(
        users={
            "old": known_user("old", "asa@edu.example.se"),
            "kept": known_user("kept", "erik@edu.example.se"),
        }
    )
    names = {fingerprint("ASA@edu.example.se "), fingerprint("erik@edu.example.se")}
    # "kept" is still wanted by its own person: it is never taken for a protected one's.
    assert protected_accounts(users, known, names) == {"old"}
    assert protected_accounts(users, known, set()) == frozenset()


def rekey_case(new_school: str) -> tuple[Plan, Known]:
    """Person "stay" stays at A; the re-keyed person is at `new_school` (A: where the account is)."""
    users = {
        "new": desired("new", "asa@edu.example.se"),
        "stay": desired("stay", "stay@edu.example.se"),
    }
    groups = {code: DesiredGroup(code, {"externalId": code}) for code in (A, B)}
    groups[A].members.add("stay")
    groups[new_school].members.add("new")
    known = Known(
        users={
            "old": known_user("old", "asa@edu.example.se", active=False),
            "stay": known_user("stay", "stay@edu.example.se"),
        },
        groups={
            A: KnownGroup(A, "g-A", "created", {"externalId": A}, {"old", "stay"}),
            B: KnownGroup(B, "g-B", "created", {"externalId": B}),
        },
    )
    plan = make_plan(users, groups, known, rekeys=find_rekeys(users, known).by_new())
    return plan, known


def test_the_plan_patches_the_same_account_and_keeps_its_memberships() -> None:
    plan, _ = rekey_case(A)
    assert [op.kind for op in plan.operations] == ["rekey_user"]
    (op,) = plan.operations
    assert (op.target, op.vendor_id, op.previous, op.why) == ("new", "v-old", "old", "userName")
    assert op.attributes == {"externalId": "new", "active": True}


def test_a_rekey_with_a_school_move_adds_and_removes_the_new_key() -> None:
    plan, _ = rekey_case(B)
    members = {(op.kind, op.target): op.members for op in plan.operations if op.members}
    assert members == {("add_members", B): ("new",), ("remove_members", A): ("new",)}
    assert [op.reason for op in plan.of_kind("remove_members") if "new" in op.members] == ["moved"]
    assert not plan.of_kind("create_user") and not plan.of_kind("deactivate_user")


def test_without_the_rekey_the_old_account_goes_and_a_new_one_is_made() -> None:
    users = {"new": desired("new", "asa@edu.example.se")}
    known = Known(users={"old": known_user("old", "asa@edu.example.se")})
    assert [op.kind for op in make_plan(users, {}, known).operations] == [
        "create_user",
        "deactivate_user",
    ]


def test_ask_holds_the_rekey_with_its_memberships_and_approve_releases_it() -> None:
    plan, _ = rekey_case(B)
    kept, held = hold_for_rekeys(plan, True, {})
    assert held is not None and "lifecycle.rekey: ask" in held.reason
    assert [(op.kind, op.members) for op in held.plan.operations] == [
        ("rekey_user", ()),
        ("add_members", ("new",)),
        ("remove_members", ("new",)),
    ]
    assert kept.operations == []
    keys = approval_keys(held.plan)
    assert "rekey_user:new" in keys
    released, rest = split_approved(plan, keys)
    assert [op.kind for op in released.operations] == ["rekey_user", "remove_members"]
    # Released, the rekey is no longer in what the rule sees: its memberships follow it.
    assert hold_for_rekeys(rest, True, {}) == (rest, None)


def test_auto_lets_it_run_unless_a_source_is_unhealthy() -> None:
    plan, _ = rekey_case(A)
    assert hold_for_rekeys(plan, False, {}) == (plan, None)
    kept, held = hold_for_rekeys(plan, False, {"roster": "failed (gone)"})
    assert held is not None and "roster failed" in held.reason and not kept


def test_a_held_rekey_keeps_its_source_and_why() -> None:
    op = Operation("rekey_user", "new", "v-old", {"externalId": "new"}, previous="old", why="x")
    assert Operation.from_dict(op.as_dict(values=False)).previous == "old"
    assert Operation.from_dict(op.as_dict()) == op


def test_the_state_moves_the_link_with_its_origin_and_memberships(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    try:
        state = store.target("default")
        state.record_user("old", "v1", "linked", {"userName": "a", "active": False})
        state.record_user("other", "v2", "created", {"userName": "b", "active": True})
        state.add_memberships(A, ["old", "other"])
        state.add_memberships(B, ["old"])
        state.add_memberships(A, ["new"])  # recorded twice over: one row is kept
        state.rekey_user("old", "new", "v1", {"userName": "a", "active": True}, "W/1")
        known = state.load_known()
    finally:
        store.close()
    assert set(known.users) == {"new", "other"}
    moved = known.users["new"]
    assert (moved.vendor_id, moved.origin, moved.active, moved.version) == (
        "v1",
        "linked",
        True,
        "W/1",
    )
    assert moved.deactivated_at is None
    assert {code: g.members for code, g in known.groups.items()} == {}  # no group rows recorded
    memberships = state_memberships(tmp_path / "state.db")
    assert memberships == {(A, "new"), (A, "other"), (B, "new")}


def state_memberships(path: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT group_external_id, user_external_id FROM memberships")
        return {(group, user) for group, user in rows}
