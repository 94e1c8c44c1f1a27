"""A synthetic Swedish municipality for the benchmark: schools, students, staff, and their year.

    data = generate(100_000, seed=1)          # ~92% students, ~8% staff, 300 schools
    write_roster(data, path)                  # the students: a roster CSV (;, UTF-8, BOM)
    for entry in staff_entries(data): ...     # the staff: entries for a directory (slapd)
    churn(data, share=0.01)                   # transfers, renames, leavers, new students
    rollover(data, share=0.30)                # students move up a year or change school

Everything is deterministic for a seed: the same calls in the same order give the same data.
The names are realistic Swedish names (å, ä, ö, hyphenated given and family names); e-mail
addresses are folded to ASCII and unique, and never reused after someone leaves.
"""

from __future__ import annotations

import base64
import csv
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# --- names -------------------------------------------------------------------------------------

GIVEN_NAMES = (
    "Alice", "Maja", "Elsa", "Astrid", "Wilma", "Freja", "Olivia", "Selma", "Alma", "Ebba",
    "Ella", "Signe", "Vera", "Agnes", "Stella", "Saga", "Ellen", "Alva", "Clara", "Juni",
    "Märta", "Åsa", "Björk", "Linnéa", "Mårten", "Göran", "Sölve", "Ingrid", "Kerstin", "Birgitta",
    "Anna-Karin", "Eva-Lena", "Ann-Sofie", "Lise-Lotte", "Karl-Johan", "Per-Olof", "Jan-Erik",
    "Noah", "William", "Hugo", "Lucas", "Liam", "Oscar", "Oliver", "Matteo", "Elias", "Adam",
    "Vincent", "Nils", "Leo", "Alexander", "Ludvig", "Theo", "Axel", "Viggo", "Isak", "Sixten",
    "Åke", "Örjan", "Östen", "Jöns", "Håkan", "Sören", "Göte", "Ragnhild", "Gunnel", "Märit",
    "Mohammed", "Ali", "Omar", "Yusuf", "Amir", "Fatima", "Noor", "Leyla", "Yasmin", "Sara",
    "Zeynep", "Mustafa", "Hassan", "Aisha", "Maryam", "Ahmad", "Ibrahim", "Hiba", "Dina", "Rami",
    "Emil", "Erik", "Johan", "Karin", "Lena", "Maria", "Linnea", "Tove", "Frida", "Jonas",
)  # fmt: skip

FAMILY_NAMES = (
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
    "Svensson", "Gustafsson", "Pettersson", "Jonsson", "Jansson", "Hansson", "Bengtsson",
    "Jönsson", "Lindberg", "Lindström", "Lindqvist", "Lindgren", "Berg", "Bergström",
    "Lundberg", "Lundgren", "Lundqvist", "Mattsson", "Berglund", "Fredriksson", "Sandberg",
    "Henriksson", "Forsberg", "Sjöberg", "Wallin", "Engström", "Eklund", "Danielsson", "Lundin",
    "Håkansson", "Björk", "Bergman", "Gunnarsson", "Holm", "Wikström", "Samuelsson", "Isaksson",
    "Fransson", "Bergqvist", "Nyström", "Holmberg", "Arvidsson", "Löfgren", "Söderberg",
    "Nyberg", "Blomqvist", "Claesson", "Nordström", "Mårtensson", "Lundström", "Viklund",
    "Björklund", "Axelsson", "Öberg", "Åberg", "Ström", "Åkesson", "Söderström", "Ekström",
    "Hedlund", "Sundberg", "Sjögren", "Nordin", "Strand", "Hermansson", "Dahlberg", "Falk",
    "Öhman", "Hellström", "Åström", "Sundström", "Ali", "Mohammed", "Ahmed", "Hassan", "Yilmaz",
    "Nguyen", "Kovačević", "Abdi", "Hussein", "Rahimi", "Virtanen", "Korhonen", "Jääskeläinen",
)  # fmt: skip

PLACE_PARTS = (
    "Ek", "Björk", "Lind", "Ås", "Öster", "Väster", "Söder", "Norr", "Häll", "Rönn", "Sjö", "Al",
    "Gran", "Tall", "Berg", "Dal", "Sand", "Strand", "Vik", "Holm", "Ängs", "Hag", "Lund", "Mal",
    "Råd", "Kvarn", "Kyrk", "Torp", "Bäck", "Hed", "Ljung", "Mos", "Näs", "Ö", "Fors", "Sälj",
)  # fmt: skip
PLACE_ENDS = ("by", "backa", "dala", "gården", "ängen", "vallen", "hagen", "lid", "hem", "torp")
PROGRAMMES = ("NA", "SA", "TE", "EK", "ES", "BF", "EE", "HA", "VO", "IM")

SCHOOL_TYPE_SHARES = (("GR", 0.70), ("GY", 0.20), ("VUX", 0.10))  # of schools
STUDENT_SHARES = {"GR": 0.76, "GY": 0.19, "VUX": 0.05}  # of students
YEARS = {"GR": 9, "GY": 3, "VUX": 0}  # the last school year of each school type

STUDENT_SHARE = 0.92
TWO_SCHOOL_STAFF_SHARE = 0.15
PROTECTED_SHARE = 0.003
HYPHENATED_FAMILY_SHARE = 0.05
SCHOOLS_AT_100K = 300

STUDENT_DOMAIN = "elev.storstad.example"
STAFF_DOMAIN = "storstad.example"

ROSTER_HEADER = (
    "Elev-ID",
    "Förnamn",
    "Efternamn",
    "E-post",
    "Skolenhetskod",
    "Skola",
    "Skolform",
    "Årskurs",
    "Klass",
    "Skyddad identitet",
)
PROTECTED_YES = "Ja"
PROTECTED_NO = "Nej"

_FOLD = str.maketrans(
    {"å": "a", "ä": "a", "ö": "o", "é": "e", "è": "e", "ü": "u", "č": "c", "ć": "c", " ": "."}
)


def fold(text: str) -> str:
    """'Anna-Karin Öberg' -> 'anna-karin.oberg': lower case, ASCII, for e-mail local parts."""
    return text.casefold().translate(_FOLD)


# --- the model ---------------------------------------------------------------------------------


@dataclass(slots=True)
class School:
    code: str  # the 8-digit skolenhetskod
    name: str
    school_type: str  # GR | GY | VUX


@dataclass(slots=True)
class Student:
    key: str  # Elev-ID
    given_name: str
    family_name: str
    email: str
    school: str  # school unit code
    year: str
    class_name: str
    protected: bool = False


@dataclass(slots=True)
class Staff:
    uid: str  # the directory entry's RDN; stable for the person
    given_name: str
    family_name: str
    email: str
    schools: list[str]  # school unit codes (departmentNumber)
    title: str  # Lärare | Rektor


@dataclass(slots=True)
class Departed:
    """Someone who left: the connector should have deactivated their account, not deleted it."""

    kind: str  # student | staff
    key: str
    email: str
    protected: bool


@dataclass
class Municipality:
    seed: int
    schools: list[School]
    students: dict[str, Student] = field(default_factory=dict)
    staff: dict[str, Staff] = field(default_factory=dict)
    departed: list[Departed] = field(default_factory=list)
    revision: int = 0  # how many changes have been applied (churn, rollover, ...)
    next_student: int = 1
    used_emails: set[str] = field(default_factory=set)

    @property
    def persons(self) -> int:
        return len(self.students) + len(self.staff)

    def __post_init__(self) -> None:
        self._by_code = {s.code: s for s in self.schools}  # the schools never change

    def school(self, code: str) -> School:
        return self._by_code[code]

    def schools_of_type(self, school_type: str) -> list[School]:
        return [s for s in self.schools if s.school_type == school_type]

    def rng(self, label: str) -> random.Random:
        """A generator for one change, deterministic for (seed, label, revision)."""
        return random.Random(f"{self.seed}:{label}:{self.revision}")

    def unique_email(self, given: str, family: str, domain: str) -> str:
        base = f"{fold(given)}.{fold(family)}"
        candidate, n = f"{base}@{domain}", 1
        while candidate in self.used_emails:
            n += 1
            candidate = f"{base}{n}@{domain}"
        self.used_emails.add(candidate)
        return candidate

    def new_student_key(self) -> str:
        key = f"E{self.next_student:07d}"
        self.next_student += 1
        return key


@dataclass
class Changes:
    """What one change did, by person (student keys and staff uids), for reporting and checks."""

    transferred: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)
    moved_year: list[str] = field(default_factory=list)

    @property
    def persons(self) -> int:
        """Distinct persons touched."""
        return len({*self.transferred, *self.renamed, *self.left, *self.joined, *self.moved_year})

    def counts(self) -> dict[str, int]:
        return {
            "transferred": len(self.transferred),
            "renamed": len(self.renamed),
            "left": len(self.left),
            "joined": len(self.joined),
            "moved_year": len(self.moved_year),
        }


# --- generation --------------------------------------------------------------------------------


def school_count(persons: int) -> int:
    """300 schools at 100,000 persons, proportionally fewer for smaller towns, at least 3."""
    return max(3, round(SCHOOLS_AT_100K * persons / 100_000))


def _name(rng: random.Random) -> tuple[str, str]:
    given = rng.choice(GIVEN_NAMES)
    family = rng.choice(FAMILY_NAMES)
    if rng.random() < HYPHENATED_FAMILY_SHARE:
        other = rng.choice(FAMILY_NAMES)
        if other != family:
            family = f"{family}-{other}"
    return given, family


def _schools(rng: random.Random, count: int) -> list[School]:
    # Every type at least once, then by share.
    types = ["GR", "GY", "VUX"]
    while len(types) < count:
        roll, acc = rng.random(), 0.0
        for school_type, share in SCHOOL_TYPE_SHARES:
            acc += share
            if roll < acc:
                types.append(school_type)
                break
        else:
            types.append("GR")
    codes = rng.sample(range(10_000_000, 99_999_999), count)
    names: set[str] = set()
    schools = []
    for code, school_type in zip(codes, types[:count], strict=True):
        while True:
            place = rng.choice(PLACE_PARTS) + rng.choice(PLACE_ENDS)
            place = place[0] + place[1:].lower()
            name = {
                "GR": f"{place}skolan",
                "GY": f"{place}gymnasiet",
                "VUX": f"Vuxenutbildningen {place}",
            }[school_type]
            if name not in names:
                break
        names.add(name)
        schools.append(School(str(code), name, school_type))
    return schools


def _year_and_class(
    rng: random.Random, school_type: str, year: int | None = None
) -> tuple[str, str]:
    if school_type == "GR":
        year = year or rng.randint(1, 9)
        return str(year), f"{year}{rng.choice('ABCD')}"
    if school_type == "GY":
        year = year or rng.randint(1, 3)
        return str(year), f"{rng.choice(PROGRAMMES)}{year}{rng.choice('abc')}"
    return "", ""


def _student(data: Municipality, rng: random.Random, school: School) -> Student:
    given, family = _name(rng)
    year, class_name = _year_and_class(rng, school.school_type)
    return Student(
        key=data.new_student_key(),
        given_name=given,
        family_name=family,
        email=data.unique_email(given, family, STUDENT_DOMAIN),
        school=school.code,
        year=year,
        class_name=class_name,
        protected=rng.random() < PROTECTED_SHARE,
    )


def _pick_school(
    rng: random.Random, data: Municipality, by_type: dict[str, list[School]]
) -> School:
    roll, acc = rng.random(), 0.0
    for school_type, share in STUDENT_SHARES.items():
        acc += share
        if roll < acc and by_type[school_type]:
            return rng.choice(by_type[school_type])
    return rng.choice(data.schools)


def generate(persons: int, *, seed: int = 1, schools: int | None = None) -> Municipality:
    """N persons (about 92% students, 8% staff) at S schools (default: 300 per 100,000)."""
    if persons < 10:
        raise ValueError("a municipality needs at least 10 persons")
    rng = random.Random(seed)
    data = Municipality(seed=seed, schools=_schools(rng, schools or school_count(persons)))
    students = round(persons * STUDENT_SHARE)
    by_type = {t: data.schools_of_type(t) for t in ("GR", "GY", "VUX")}
    for _ in range(students):
        student = _student(data, rng, _pick_school(rng, data, by_type))
        data.students[student.key] = student
    # Staff: one rektor per school first, then teachers; 15% of staff work at two schools.
    staff_count = persons - students
    codes = [s.code for s in data.schools]
    for i in range(staff_count):
        given, family = _name(rng)
        email = data.unique_email(given, family, STAFF_DOMAIN)
        if i < len(codes):
            schools_of, title = [codes[i]], "Rektor"
        else:
            schools_of, title = [rng.choice(codes)], "Lärare"
            if rng.random() < TWO_SCHOOL_STAFF_SHARE:
                other = rng.choice(codes)
                if other != schools_of[0]:
                    schools_of.append(other)
        uid = email.split("@")[0]
        data.staff[uid] = Staff(uid, given, family, email, schools_of, title)
    return data


# --- output ------------------------------------------------------------------------------------


def roster_rows(data: Municipality) -> Iterator[list[str]]:
    schools = {s.code: s for s in data.schools}
    for s in data.students.values():
        school = schools[s.school]
        yield [
            s.key,
            s.given_name,
            s.family_name,
            s.email,
            s.school,
            school.name,
            school.school_type,
            s.year,
            s.class_name,
            PROTECTED_YES if s.protected else PROTECTED_NO,
        ]


def write_roster(data: Municipality, path: Path) -> Path:
    """The students as a student information system exports them: `;`, UTF-8 with BOM, CRLF."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(ROSTER_HEADER)
    writer.writerows(roster_rows(data))
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8"))
    tmp.replace(path)  # the connector never reads a half-written export
    return path


def staff_attributes(person: Staff) -> dict[str, object]:
    """The directory attributes of a staff member (an inetOrgPerson)."""
    return {
        "cn": f"{person.given_name} {person.family_name}",
        "givenName": person.given_name,
        "sn": person.family_name,
        "mail": person.email,
        "departmentNumber": list(person.schools),
        "title": person.title,
    }


def staff_entries(data: Municipality) -> Iterator[tuple[str, dict[str, object]]]:
    """(uid, attributes) for each staff member, for `Slapd.add_person` or an LDIF."""
    for person in data.staff.values():
        yield person.uid, staff_attributes(person)


def write_ldif(data: Municipality, path: Path, *, suffix: str = "dc=kommun,dc=example") -> Path:
    """The staff as LDIF (for a look, or `ldapadd`); the benchmark adds them over the protocol."""
    lines = []
    for uid, attributes in staff_entries(data):
        lines += [f"dn: uid={uid},ou=people,{suffix}", "objectClass: inetOrgPerson", f"uid: {uid}"]
        for name, value in attributes.items():
            for item in value if isinstance(value, list) else [value]:
                text = str(item)
                if text.isascii():
                    lines.append(f"{name}: {text}")
                else:
                    lines.append(f"{name}:: {base64.b64encode(text.encode()).decode()}")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# --- changes -----------------------------------------------------------------------------------


def _pick_persons(
    rng: random.Random, data: Municipality, count: int, exclude: set[str]
) -> list[str]:
    """`count` persons (student keys or staff uids) in proportion to the population."""
    everyone = [k for k in (*data.students, *data.staff) if k not in exclude]
    return rng.sample(everyone, min(count, len(everyone)))


def _other_school(rng: random.Random, data: Municipality, current: str, school_type: str) -> str:
    choices = [s.code for s in data.schools_of_type(school_type) if s.code != current]
    if not choices:
        choices = [s.code for s in data.schools if s.code != current]
    return rng.choice(choices)


def _transfer(rng: random.Random, data: Municipality, key: str) -> None:
    if key in data.students:
        student = data.students[key]
        school_type = data.school(student.school).school_type
        student.school = _other_school(rng, data, student.school, school_type)
    else:
        person = data.staff[key]
        new = _other_school(rng, data, person.schools[0], "GR")
        person.schools = [new if c == person.schools[0] else c for c in person.schools]
        person.schools = list(dict.fromkeys(person.schools))


def _rename(rng: random.Random, data: Municipality, key: str) -> None:
    """A new family name (marriage, a chosen name), hence a new e-mail address and userName."""
    person: Student | Staff = data.students.get(key) or data.staff[key]
    new_family = person.family_name
    while new_family == person.family_name:
        new_family = rng.choice(FAMILY_NAMES)
    person.family_name = new_family
    domain = STUDENT_DOMAIN if key in data.students else STAFF_DOMAIN
    person.email = data.unique_email(person.given_name, new_family, domain)


def _leave(data: Municipality, key: str) -> None:
    if key in data.students:
        s = data.students.pop(key)
        data.departed.append(Departed("student", key, s.email, s.protected))
    else:
        p = data.staff.pop(key)
        data.departed.append(Departed("staff", key, p.email, False))


def churn(data: Municipality, share: float = 0.01) -> Changes:
    """`share` of all persons change, in four equal parts: transfers to another school,
    renames (new family name and e-mail), leavers, and new students."""
    rng = data.rng("churn")
    total = max(4, round(data.persons * share))
    part = total // 4
    changes = Changes()
    picked = _pick_persons(rng, data, 3 * part, set())
    changes.transferred = picked[:part]
    changes.renamed = picked[part : 2 * part]
    changes.left = picked[2 * part :]
    for key in changes.transferred:
        _transfer(rng, data, key)
    for key in changes.renamed:
        _rename(rng, data, key)
    for key in changes.left:
        _leave(data, key)
    by_type = {t: data.schools_of_type(t) for t in ("GR", "GY", "VUX")}
    for _ in range(total - 3 * part):
        student = _student(data, rng, _pick_school(rng, data, by_type))
        data.students[student.key] = student
        changes.joined.append(student.key)
    data.revision += 1
    return changes


def rollover(data: Municipality, share: float = 0.30) -> Changes:
    """The new school year: `share` of the students change year or school, about half each.

    A change of year (7 -> 8, a new class) changes nothing the vendor holds with the default
    mapping; a change of school (ninth-graders to a gymnasium, or another school of the same
    type) moves the student's group membership.
    """
    rng = data.rng("rollover")
    keys = rng.sample(sorted(data.students), round(len(data.students) * share))
    changes = Changes()
    gy = [s.code for s in data.schools_of_type("GY")]
    for i, key in enumerate(keys):
        student = data.students[key]
        school_type = data.school(student.school).school_type
        last = YEARS[school_type]
        if i % 2 == 0 and school_type != "VUX" and student.year and int(student.year) < last:
            student.year, student.class_name = _year_and_class(
                rng, school_type, int(student.year) + 1
            )
            changes.moved_year.append(key)
            continue
        if school_type == "GR" and student.year == "9" and gy:
            student.school = rng.choice(gy)
            student.year, student.class_name = _year_and_class(rng, "GY", 1)
        else:
            student.school = _other_school(rng, data, student.school, school_type)
            if school_type != "VUX":
                student.year, student.class_name = _year_and_class(rng, school_type)
        changes.transferred.append(key)
    data.revision += 1
    return changes


def rename_one(data: Municipality, key: str) -> None:
    """One person's new family name and e-mail (for the on-demand sync of one person)."""
    _rename(data.rng("one"), data, key)
    data.revision += 1
