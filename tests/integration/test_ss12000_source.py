"""SS 12000 -> the connector -> a real SCIM server, against the spec-validated test server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connector.config import Ss12000SourceConfig
from connector.errors import SourceError
from connector.people.model import Kind, ReadContext, SourceRead
from connector.sources.ss12000 import Ss12000Source
from connector.sources.ss12000_people import current
from tests.fakes.ss12000_server import SS12000Server, enrolment, membership
from tests.support.scim import ScimPeek
from tests.support.ss12000 import ss12000_source, ss12000_workspace

GR_CODE, GY_CODE = "12345678", "87654321"


@pytest.fixture
def ss12000() -> Iterator[SS12000Server]:
    with SS12000Server(token_lifetime=3600) as server:
        yield server


def school(server: SS12000Server) -> dict[str, Any]:
    """Two school units, students, staff at two units, every kind of protected marking."""
    gr = server.add_school_unit("Björkskolan", GR_CODE, ("GR",))
    gy = server.add_school_unit("Ekgymnasiet", GY_CODE, ("GY",))
    # The connector's calendar is Sweden's (sources/ss12000_people.py): the machine's date
    # is another one between 23:00 and 24:00 UTC in winter.
    today = datetime.now(ZoneInfo("Europe/Stockholm")).date()
    ids: dict[str, Any] = {"gr": gr, "gy": gy}

    def student(
        key: str,
        given: str,
        family: str,
        unit: dict[str, Any],
        marking: str | None = "Ingen",
        **kw: Any,
    ) -> None:
        person = server.add_person(
            given,
            family,
            security_marking=marking,
            emails=[("Skola elev", f"{key}@elev.example.se")],
            eppns=[f"{key}@example.se"],
            enrolments=[
                kw.pop("enrolment", None) or enrolment(unit, "GR" if unit is gr else "GY", 5)
            ],
        )
        ids[key] = person["id"]

    student("astrid", "Astrid", "Åberg", gr)
    student("bo", "Bo", "Öst", gy)
    student("cilla", "Cilla", "Sekretess", gr, marking="Sekretessmarkering")
    student("dan", "Dan", "Skyddad", gr, marking="Skyddad folkbokföring")
    student("eva", "Eva", "Omarkerad", gy, marking=None)
    student(
        "finn",
        "Finn",
        "Slutat",
        gr,
        enrolment=enrolment(
            gr, "GR", 9, start_date="2020-08-15", end_date=(today - timedelta(days=1)).isoformat()
        ),
    )
    student(
        "gun",
        "Gun",
        "Slutarida",
        gr,
        enrolment=enrolment(gr, "GR", 9, start_date="2020-08-15", end_date=today.isoformat()),
    )
    teacher = server.add_person(
        "Karin",
        "Lärarsson",
        security_marking="Ingen",
        emails=[("Skola personal", "karin@personal.example.se")],
    )
    server.add_duty(teacher, gr, "Lärare")
    server.add_duty(teacher, gy, "Lärare")
    server.add_duty(teacher, gy, "Skolsköterska")  # a role out of scope
    ids["karin"] = teacher["id"]
    return ids


def reader(
    server: SS12000Server, clock: Callable[[], float] | None = None, **overrides: Any
) -> Ss12000Source:
    """The source itself, read directly (no sync around it)."""
    config = ss12000_source(server, **overrides)
    config["auth"]["client_secret"] = server.client_secret
    validated = Ss12000SourceConfig.model_validate(config)
    return Ss12000Source(validated) if clock is None else Ss12000Source(validated, clock=clock)


def read_changes(sis: Ss12000Source, previous: SourceRead) -> SourceRead:
    """An incremental read after `previous`, from its snapshot as the state file keeps it."""
    snapshot = previous.snapshot
    objects = json.loads(json.dumps(snapshot.objects))
    return sis.read(ReadContext(full=False, snapshot=objects, checkpoint=snapshot.checkpoint))


def by_key(read: SourceRead) -> dict[str, Any]:
    return {p.source_key: p for p in read.persons}


def test_students_staff_and_protected_persons(
    tmp_path: Path, scim_url: str, peek: ScimPeek, ss12000: SS12000Server
) -> None:
    school(ss12000)
    workspace = ss12000_workspace(tmp_path, scim_url, ss12000)

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    users = peek.users()
    assert set(users) == {
        "astrid@elev.example.se",
        "bo@elev.example.se",
        "gun@elev.example.se",
        "karin@personal.example.se",
    }
    assert users["karin@personal.example.se"]["userType"] == "teacher"
    groups = peek.groups()
    assert peek.member_names(groups[GR_CODE]) == {
        "astrid@elev.example.se",
        "gun@elev.example.se",
        "karin@personal.example.se",
    }
    assert peek.member_names(groups[GY_CODE]) == {"bo@elev.example.se", "karin@personal.example.se"}
    assert groups[GR_CODE]["displayName"] == "Björkskolan"
    assert result.event("sync.finished")["excluded"] == {"protected identity": 3}
    for secret in ("Cilla", "Sekretess", "Skyddad", "Omarkerad", "cilla@", "dan@", "eva@"):
        assert secret not in result.stderr + result.stdout
        assert secret.encode() not in workspace.state_path.read_bytes()
    assert b"civicNo" not in workspace.state_path.read_bytes()
    # every listing was read to its end, page by page
    assert any(r.param("pageToken") for r in ss12000.requests_to("/persons"))


def test_second_cycle_is_incremental(
    tmp_path: Path, scim_url: str, peek: ScimPeek, ss12000: SS12000Server
) -> None:
    ids = school(ss12000)
    workspace = ss12000_workspace(tmp_path, scim_url, ss12000)
    workspace.overrides["reconcile"] = {"full_every_hours": 24}
    assert workspace.sync().exit_code == 0
    ss12000.clear_requests()

    ss12000.update("persons", ids["astrid"], familyName="Åberg-Ek")
    ss12000.delete("persons", ids["bo"])
    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    listings = [
        r
        for r in ss12000.requests
        if r.path in ("/organisations", "/persons", "/duties") and not r.param("pageToken")
    ]
    assert listings and all(r.is_incremental or r.param("person") for r in listings)
    assert [r.path for r in ss12000.requests if r.path == "/deletedEntities"] == [
        "/deletedEntities"
    ]
    users = peek.users()
    assert users["astrid@elev.example.se"]["name"]["familyName"] == "Åberg-Ek"
    assert users["bo@elev.example.se"]["active"] is False
    assert users["karin@personal.example.se"]["active"] is True  # unchanged, from the kept picture
    assert peek.member_names(peek.groups()[GY_CODE]) == {"karin@personal.example.se"}


def test_expired_token_is_renewed_and_a_wrong_secret_fails_cleanly(
    tmp_path: Path, scim_url: str, peek: ScimPeek, ss12000: SS12000Server
) -> None:
    school(ss12000)
    workspace = ss12000_workspace(tmp_path, scim_url, ss12000)
    assert workspace.sync().exit_code == 0
    issued = ss12000.tokens_issued

    ss12000.expire_all_tokens()
    assert workspace.run("sync", "--full").exit_code == 0
    assert ss12000.tokens_issued == issued + 1

    workspace.environment["TEST_SS12000_SECRET"] = "wrong-secret"
    result = workspace.run("sync", "--full")

    assert result.exit_code == 1
    failed = result.event("source.failed")
    assert failed["source"] == "sis" and "invalid_client" in failed["reason"]
    assert "wrong-secret" not in result.stderr + result.stdout
    assert all(u["active"] for u in peek.list("Users"))


def test_a_page_that_fails_fails_the_source(
    tmp_path: Path, scim_url: str, peek: ScimPeek, ss12000: SS12000Server
) -> None:
    school(ss12000)
    workspace = ss12000_workspace(tmp_path, scim_url, ss12000)
    assert workspace.sync().exit_code == 0

    ss12000.fail("/persons", 500, page=2)
    result = workspace.run("sync", "--full")

    assert result.exit_code == 1
    assert "HTTP 500" in result.event("source.failed")["reason"]
    assert all(u["active"] for u in peek.list("Users"))


def test_dates_are_swedish_calendar_days() -> None:
    today = date(2026, 6, 30)
    assert current({"startDate": "2026-06-30", "endDate": "2026-06-30"}, today)
    assert not current({"startDate": "2026-07-01"}, today)
    assert not current({"startDate": "2020-01-01", "endDate": "2026-06-29"}, today)
    assert current({"startDate": "2020-01-01"}, today)
    assert ZoneInfo("Europe/Stockholm")  # the zone the source evaluates "today" in


def test_class_groups_give_students_their_class(ss12000: SS12000Server) -> None:
    ids = school(ss12000)
    ss12000.add_group(
        "5B",
        ids["gr"],
        members=[membership(ids["astrid"]), membership(ids["cilla"])],
        group_type="Klass",
    )
    config = ss12000_source(ss12000, classes=True)
    config["auth"]["client_secret"] = ss12000.client_secret

    read = Ss12000Source(Ss12000SourceConfig.model_validate(config)).read()

    astrid = next(p for p in read.persons if p.source_key == ids["astrid"])
    assert [p.class_name for p in astrid.placements] == ["5B"]
    assert any(r.param("groupType") == "Klass" for r in ss12000.requests_to("/groups"))
    # the protected student's membership is not kept for the next cycle
    kept = read.snapshot.objects["groups"]
    assert all(
        m["person"]["id"] != ids["cilla"] for g in kept.values() for m in g["groupMemberships"]
    )


def test_unsafe_names_roles_and_class_names_are_reported_and_held(
    ss12000: SS12000Server,
) -> None:
    ids = school(ss12000)
    hyperlink = '=HYPERLINK("http://evil.example","x")'
    unit = ss12000.add_school_unit(hyperlink, "33333333", ("GR",))

    def add(given: str, family: str, key: str, **kw: Any) -> str:
        emails = [("Skola elev", f"{key}@elev.example.se")]
        person = ss12000.add_person(given, family, security_marking="Ingen", emails=emails, **kw)
        return str(person["id"])

    bidi = add("Ann\u202ea", "Berg", "ann", enrolments=[enrolment(ids["gr"], "GR", 5)])
    in_class = add("Li", "Ek", "li", enrolments=[enrolment(ids["gr"], "GR", 5)])
    ss12000.add_group("5\u200bC", ids["gr"], members=[membership(in_class)], group_type="Klass")
    teacher = add("Bo", "Lärarsson", "bo", enrolments=[])
    ss12000.add_duty(teacher, ids["gr"], "=cmd|' /C calc'!A0")
    at_unit = add("Cy", "Ek", "cy", enrolments=[enrolment(unit, "GR", 5)])
    config = ss12000_source(ss12000, classes=True, duty_roles=[])
    config["auth"]["client_secret"] = ss12000.client_secret

    read = Ss12000Source(Ss12000SourceConfig.model_validate(config)).read()

    assert {(i.location, i.reason) for i in read.issues} == {
        (f"Person {bidi}", "givenName holds bidirectional text controls"),
        (f"Person {in_class}", "class name holds zero-width characters"),
        (f"Person {teacher}", "dutyRole starts like a spreadsheet formula (=, +, -, @)"),
        (
            f"Organisation {unit['id']}",
            "displayName starts like a spreadsheet formula (=, +, -, @); "
            "the school unit is named by its code",
        ),
    }
    persons = {p.source_key for p in read.persons}
    assert {bidi, in_class, teacher} <= read.unreadable_keys - persons  # held, not gone
    assert at_unit in persons  # a school's name does not take its students away
    assert {s.code: s.name for s in read.schools}["33333333"] == "33333333"


def test_a_server_that_sends_no_security_marking_at_all_fails_the_source(
    tmp_path: Path, scim_url: str, peek: ScimPeek, ss12000: SS12000Server
) -> None:
    gr = ss12000.add_school_unit("Björkskolan", GR_CODE, ("GR",))
    for key in ("astrid", "bo", "cilla"):
        ss12000.add_person(
            key.title(),
            "Utanmarkering",
            security_marking=None,  # the field is simply not there, for anyone
            emails=[("Skola elev", f"{key}@elev.example.se")],
            enrolments=[enrolment(gr, "GR", 5)],
        )
    workspace = ss12000_workspace(tmp_path, scim_url, ss12000)

    result = workspace.sync()

    assert result.exit_code == 1, result.stdout
    assert "securityMarking" in result.event("source.failed")["reason"]
    assert peek.list("Users") == []


def test_deletions_past_the_first_page_of_deleted_entities_arrive(
    ss12000: SS12000Server,
) -> None:
    ids = school(ss12000)
    sis = reader(ss12000)
    first = sis.read()
    ss12000.delete("persons", ids["astrid"])
    ss12000.delete("persons", ids["bo"])
    ss12000.delete("persons", ids["gun"])
    (gr_duty,) = [
        d["id"]
        for d in ss12000.all("duties")
        if d["person"]["id"] == ids["karin"] and d["dutyAt"]["id"] == ids["gr"]["id"]
    ]
    ss12000.delete("duties", gr_duty)
    ss12000.max_page_size = 1  # the server pages on its own, one deletion a page
    ss12000.clear_requests()

    second = read_changes(sis, first)

    persons = by_key(second)
    assert not {ids["astrid"], ids["bo"], ids["gun"]} & persons.keys()
    assert [p.school_unit_code for p in persons[ids["karin"]].placements] == [GY_CODE]
    assert not {ids["astrid"], ids["bo"], ids["gun"]} & second.snapshot.objects["persons"].keys()
    assert gr_duty not in second.snapshot.objects["duties"]
    deleted = ss12000.requests_to("/deletedEntities")
    assert len(deleted) == 4 and all(r.status == 200 for r in deleted)  # a page per deletion
    assert all(r.is_continuation for r in deleted[1:])


def test_a_failed_page_of_deleted_entities_fails_the_read(ss12000: SS12000Server) -> None:
    ids = school(ss12000)
    sis = reader(ss12000)
    first = sis.read()
    ss12000.delete("persons", ids["astrid"])
    ss12000.delete("persons", ids["bo"])
    ss12000.max_page_size = 1
    ss12000.fail("/deletedEntities", 500, page=2)

    with pytest.raises(SourceError, match="deletedEntities: HTTP 500"):
        read_changes(sis, first)


def test_class_changes_arrive_in_an_incremental_read(ss12000: SS12000Server) -> None:
    ids = school(ss12000)
    renamed = ss12000.add_group("5A", ids["gr"], members=[ids["astrid"]], group_type="Klass")
    gone = ss12000.add_group("9C", ids["gr"], members=[ids["gun"]], group_type="Klass")
    sis = reader(ss12000, classes=True)
    first = sis.read()
    assert by_key(first)[ids["gun"]].placements[0].class_name == "9C"
    ss12000.update("groups", renamed["id"], displayName="5A-Ek")
    ss12000.delete("groups", gone["id"])
    ss12000.clear_requests()

    second = read_changes(sis, first)

    persons = by_key(second)
    assert [p.class_name for p in persons[ids["astrid"]].placements] == ["5A-Ek"]
    assert [p.class_name for p in persons[ids["gun"]].placements] == [None]
    assert gone["id"] not in second.snapshot.objects["groups"]
    # It was an incremental read, and it asked for changed and deleted classes.
    firsts = [r for r in ss12000.requests if r.path != "/token" and not r.is_continuation]
    listings = [r for r in firsts if r.path != "/deletedEntities" and not r.param("person")]
    assert {r.path for r in listings} == {"/organisations", "/persons", "/duties", "/groups"}
    assert all(r.is_incremental for r in listings)
    (groups,) = [r for r in listings if r.path == "/groups"]
    assert groups.query["groupType"] == ["Klass"]
    (deleted,) = [r for r in firsts if r.path == "/deletedEntities"]
    assert "Group" in deleted.query["entities"]


def test_a_short_lived_token_serves_most_of_its_life(ss12000: SS12000Server) -> None:
    school(ss12000)
    ss12000.token_lifetime = 30  # expires_in 30: renewed 5 s before its end, at 25 s
    step = 4.5
    ss12000.clock_step_per_request = step  # each request takes 4.5 s of the server's time
    sis = reader(ss12000, clock=lambda: ss12000.now().timestamp())

    sis.read()

    gets = [r for r in ss12000.requests if r.path != "/token"]
    assert 25 < len(gets) * step < 50  # the read outlives one token, not two
    assert len(ss12000.requests_to("/token")) == 2
    assert all(r.status == 200 for r in ss12000.requests)  # renewed before it expired
    assert len({r.bearer for r in gets}) == 2


def test_no_duty_lookups_for_protected_persons(ss12000: SS12000Server) -> None:
    ids = school(ss12000)  # three protected students
    lena = ss12000.add_person(
        "Lena",
        "Lärare",
        security_marking="Sekretessmarkering",
        emails=[("Skola personal", "lena@personal.example.se")],
    )
    ss12000.add_duty(lena, ids["gr"], "Lärare")
    sis = reader(ss12000)
    first = sis.read()
    ss12000.update("persons", lena["id"], securityMarking="Ingen")  # no longer protected
    ss12000.update("persons", ids["karin"], securityMarking="Skyddad folkbokföring")
    ss12000.clear_requests()

    second = read_changes(sis, first)  # everyone is listed again (the checkpoint's overlap)

    asked = {r.param("person") for r in ss12000.requests_to("/duties") if r.param("person")}
    assert asked == {lena["id"]}  # only the unprotected person new to the picture
    listed = [r for r in ss12000.requests_to("/persons") if not r.is_continuation]
    assert listed and all(r.is_incremental for r in listed)
    persons = by_key(second)
    assert persons[lena["id"]].kind is Kind.STAFF
    assert [p.school_unit_code for p in persons[lena["id"]].placements] == [GR_CODE]
    # A teacher now protected is still known as staff (from the kept duties), so the right
    # account comes off; nothing of her is kept.
    assert persons[ids["karin"]].protected and persons[ids["karin"]].kind is Kind.STAFF
    assert ids["karin"] not in second.snapshot.objects["persons"]
    protected = {ids[k] for k in ("cilla", "dan", "eva", "karin")}
    kept = second.snapshot.objects
    assert not protected & kept["persons"].keys()
    assert all(d["person"]["id"] not in protected for d in kept["duties"].values())
