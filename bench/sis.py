"""An SS 12000 town for the benchmark: students whose school keeps them in a student
information system with the SS 12000:2020 API, served by the test server
(tests/fakes/ss12000_server.py) and read by an `ss12000` source (incremental, as a daemon
reads it).

The pupils are generated like the roster's students (bench/generate.py, another seed), at
school units of their own and with addresses in a domain of their own, so no userName or
school unit code is shared with the roster town. About 0.3% are protected
(`securityMarking`), as in the roster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench import generate as gen
from tests.fakes.ss12000_server import SS12000Server, enrolment

SIS_DOMAIN = "sis.storstad.example"
SECRET_ENV = "BENCH_SS12000_SECRET"  # noqa: S105 (the name of a variable)
NOT_PROTECTED = "Ingen"
PROTECTED = "Skyddad folkbokföring"


@dataclass(slots=True)
class Pupil:
    person_id: str  # the SS 12000 person's id
    user_name: str  # what the vendor knows them by (the e-mail, lower case)
    family_name: str
    protected: bool


class SisTown:
    """`pupils` students in a started SS 12000 test server, at school units whose codes are
    not in `taken_codes`."""

    def __init__(self, pupils: int, *, seed: int, taken_codes: set[str]) -> None:
        self.server = SS12000Server(token_lifetime=24 * 3600)
        self.pupils: list[Pupil] = []
        self._count = pupils
        self._seed = seed
        self._taken = taken_codes

    def __enter__(self) -> SisTown:
        self.server.start()
        try:
            self._populate()
        except BaseException:
            self.server.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.server.stop()

    def _populate(self) -> None:
        data = gen.generate(math.ceil(self._count / gen.STUDENT_SHARE) + 10, seed=self._seed)
        units = {}
        for school in data.schools:
            if school.code in self._taken:
                continue
            units[school.code] = self.server.add_school_unit(
                f"{school.name} (SIS)", school.code, (school.school_type,)
            )
        students = [s for s in data.students.values() if s.school in units][: self._count]
        types = {s.code: s.school_type for s in data.schools}
        for student in students:
            email = student.email.split("@")[0] + "@" + SIS_DOMAIN
            year = int(student.year) if student.year.isdigit() else None
            person = self.server.add_person(
                student.given_name,
                student.family_name,
                security_marking=PROTECTED if student.protected else NOT_PROTECTED,
                emails=[("Skola elev", email)],
                enrolments=[enrolment(units[student.school], types[student.school], year)],
            )
            self.pupils.append(
                Pupil(person["id"], email.lower(), student.family_name, student.protected)
            )

    def source(self) -> dict[str, Any]:
        """The connector's source for it (the secret from SECRET_ENV)."""
        server = self.server
        return {
            "name": "sis",
            "type": "ss12000",
            "base_url": server.base_url,
            "auth": {
                "token_url": server.token_url,
                "client_id": server.client_id,
                "client_secret": "${" + SECRET_ENV + "}",
            },
            "timeout_seconds": 120,
        }

    def env(self) -> dict[str, str]:
        return {SECRET_ENV: self.server.client_secret}

    def rename(self, pupil: Pupil, family_name: str) -> None:
        """A new family name in the SIS (meta.modified moves with it)."""
        self.server.update("persons", pupil.person_id, familyName=family_name)
        pupil.family_name = family_name
