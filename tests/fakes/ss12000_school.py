"""A small, realistic school for the fake SS 12000 server (tests/fakes/ss12000_server.py).

``populate(server)`` creates one municipality (Huvudman) with a compulsory school and an upper
secondary school, students (one of each securityMarking, one without the field), staff with
duties, a guardian, and two classes. All civic numbers are made up but pass the Luhn check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.fakes.ss12000_server import SS12000Server, assignment_role, enrolment


def luhn_digit(nine_digits: str) -> str:
    """The check digit of a personnummer over YYMMDDNNN (without the century)."""
    total = 0
    for i, ch in enumerate(nine_digits):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return str((10 - total % 10) % 10)


def civic_no(yyyymmdd: str, serial: str) -> str:
    """A 12-digit personnummer (SS 12000 writes them without separator)."""
    return yyyymmdd + serial + luhn_digit(yyyymmdd[2:] + serial)


@dataclass
class DemoSchool:
    """Ids of what ``populate`` created (each value is the object's uuid)."""

    huvudman: str
    bjorkskolan: str
    ekgymnasiet: str
    students: dict[str, str] = field(default_factory=dict)
    staff: dict[str, str] = field(default_factory=dict)
    guardians: dict[str, str] = field(default_factory=dict)
    duties: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)

    @property
    def person_ids(self) -> set[str]:
        return {*self.students.values(), *self.staff.values(), *self.guardians.values()}


def populate(server: SS12000Server) -> DemoSchool:
    kommun = server.add_huvudman(
        "Exempelby kommun", organisation_number="2120000000", municipality_code="9999"
    )
    bjork = server.add_school_unit(
        "Björkskolan", "12345678", ("GR", "GRS"), parent=kommun, municipality_code="9999"
    )
    ek = server.add_school_unit("Ekgymnasiet", "87654321", ("GY",), parent=kommun)
    school = DemoSchool(huvudman=kommun["id"], bjorkskolan=bjork["id"], ekgymnasiet=ek["id"])

    def student(key: str, given: str, family: str, birth: str, serial: str, **kw: object) -> None:
        user = f"{given.lower()}.{key}"
        person = server.add_person(
            given,
            family,
            civic_no=civic_no(birth, serial),
            emails=[("Skola elev", f"{user}@elev.exempelby.se")],
            eppns=[f"{user}@exempelby.se"],
            **kw,  # type: ignore[arg-type]
        )
        school.students[key] = person["id"]

    student(
        "astrid",
        "Astrid",
        "Lindqvist",
        "20150312",
        "238",
        security_marking="Ingen",
        enrolments=[enrolment(bjork, "GR", 4)],
    )
    student(
        "bjorn",
        "Björn",
        "Öberg",
        "20150611",
        "457",
        security_marking="Sekretessmarkering",
        enrolments=[enrolment(bjork, "GR", 4)],
    )
    student(
        "cecilia",
        "Cecilia",
        "Åberg",
        "20140923",
        "362",
        security_marking="Skyddad folkbokföring",
        enrolments=[enrolment(bjork, "GRS", 5)],
    )
    student("david", "David", "Ek", "20150101", "111", enrolments=[enrolment(bjork, "GR", 4)])
    student(
        "elin",
        "Elin",
        "Sjöberg",
        "20080402",
        "224",
        security_marking="Ingen",
        enrolments=[enrolment(ek, "GY", 1, start_date="2024-08-19")],
    )

    def staff(key: str, given: str, family: str, birth: str, serial: str) -> dict:
        user = f"{given.lower()}.{family.lower()}"
        person = server.add_person(
            given,
            family,
            civic_no=civic_no(birth, serial),
            security_marking="Ingen",
            emails=[("Skola personal", f"{user}@exempelby.se")],
            eppns=[f"{user}@exempelby.se"],
        )
        school.staff[key] = person["id"]
        return person

    karin = staff("karin", "Karin", "Larsson", "19800514", "246")
    lars = staff("lars", "Lars", "Rektorsson", "19701120", "135")
    maria = staff("maria", "Maria", "Nilsson", "19850228", "482")

    guardian = server.add_person(
        "Per",
        "Lindqvist",
        civic_no=civic_no("19820707", "179"),
        security_marking="Ingen",
        emails=[("Privat", "per.lindqvist@example.com")],
    )
    school.guardians["per"] = guardian["id"]
    server.update(
        "persons",
        school.students["astrid"],
        responsibles=[{"person": {"id": guardian["id"]}, "relationType": "Vårdnadshavare"}],
    )

    class4a = server.add_group(
        "4A",
        bjork,
        school_type="GR",
        members=[school.students[k] for k in ("astrid", "bjorn", "cecilia", "david")],
    )
    na24 = server.add_group("NA24a", ek, school_type="GY", members=[school.students["elin"]])
    school.groups.update({"4A": class4a["id"], "NA24a": na24["id"]})

    school.duties["karin"] = server.add_duty(
        karin, bjork, "Lärare", signature="KLA", assignment_roles=[assignment_role(class4a)]
    )["id"]
    school.duties["lars"] = server.add_duty(lars, bjork, "Rektor")["id"]
    school.duties["maria"] = server.add_duty(maria, ek, "Lärare", signature="MNI")["id"]
    school.duties["maria_bjork"] = server.add_duty(
        maria, bjork, "Speciallärare/specialpedagog", start_date="2024-01-08", end_date="2024-06-14"
    )["id"]
    return school
