"""A target that was `kind: scim` and becomes `kind: egil` (connector/state/uuids.py): its
records' 32-hex externalIds become UUIDs once, everywhere they are held; the SCIM groups go."""

from __future__ import annotations

from pathlib import Path

from connector.mapping.usernames import AssignedName
from connector.state.history import Change
from connector.state.store import StateStore
from connector.state.uuids import migrate_to_uuids, migrated
from connector.targets.egil.ids import egil_uuid
from tests.support.egil import EGIL_IDS, IDS, student

OLD = [IDS.for_person(student(f"S{i}")) for i in range(3)]


def scim_state(path: Path) -> StateStore:
    state = StateStore.open(path)
    tstate = state.target("vendor")
    tstate.history.begin("run-1")
    for ext in OLD:
        tstate.record_user(ext, f"vendor-{ext[:6]}", "created", {"userName": f"{ext[:4]}@x"})
        tstate.history.record([Change(ext, "create", ("userName",))])
    tstate.record_group("11111111", "g-1", "created", {"displayName": "Norrskolan"})
    tstate.add_memberships("11111111", OLD)
    tstate.assign_username(OLD[0], AssignedName("anna.a@elev.x", "anna.a"))
    tstate.record_failure(f"update_user:{OLD[1]}", 60, 600)
    state.target("other").record_user(OLD[2], "v", "created", {"userName": "o@x"})
    return state


def test_ids_become_uuids_everywhere_once(tmp_path: Path) -> None:
    state = scim_state(tmp_path / "state.db")
    tstate = state.target("vendor")
    assert migrate_to_uuids(tstate, EGIL_IDS.person) == 3
    new = [egil_uuid(ext) for ext in OLD]
    known = tstate.load_known()
    assert sorted(known.users) == sorted(new)
    assert all(known.users[u].vendor_id == u for u in new)  # EGIL's id is the externalId
    assert known.users[new[0]].attributes == {"userName": f"{OLD[0][:4]}@x"}
    assert not known.groups  # the SCIM school groups have no EGIL counterpart
    assert tstate.generated_usernames() == {new[0]: AssignedName("anna.a@elev.x", "anna.a")}
    assert tstate.failure_keys() == {f"update_user:{new[1]}"}
    entries = state.history.entries([("vendor", u) for u in new])
    assert sorted(e.external_id for e in entries) == sorted(new)
    assert not state.history.entries([("vendor", ext) for ext in OLD])
    # Another target's records are its own.
    assert set(state.target("other").load_known().users) == {OLD[2]}
    assert migrated(tstate)
    # Once: a second run changes nothing (and a user recorded since is left alone).
    tstate.record_user("f" * 32, "v", "created", {"userName": "late@x"})
    assert migrate_to_uuids(tstate, EGIL_IDS.person) == 0
    assert "f" * 32 in tstate.load_known().users
    state.close()


def test_a_new_egil_target_is_marked_and_nothing_else(tmp_path: Path) -> None:
    state = StateStore.open(tmp_path / "state.db")
    tstate = state.target("egil")
    assert migrate_to_uuids(tstate, EGIL_IDS.person) == 0
    assert migrated(tstate)
    assert not tstate.load_known().users
    state.close()


def test_it_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    state = scim_state(path)
    migrate_to_uuids(state.target("vendor"), EGIL_IDS.person)
    state.close()
    again = StateStore.open(path)
    assert migrated(again.target("vendor"))
    assert sorted(again.target("vendor").load_known().users) == sorted(
        egil_uuid(ext) for ext in OLD
    )
    again.close()
