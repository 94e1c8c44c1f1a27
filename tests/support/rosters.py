"""Roster CSV files as schools export them: Swedish headers, `;` between fields, CRLF."""

from __future__ import annotations

from pathlib import Path

STUDENT_HEADER = [
    "Elev-ID",
    "Förnamn",
    "Efternamn",
    "E-post",
    "Skolenhetskod",
    "Skola",
    "Skolform",
    "Årskurs",
    "Klass",
    "Skyddad",
]
STAFF_HEADER = [
    "Personal-ID",
    "Förnamn",
    "Efternamn",
    "E-post",
    "Skolenhetskod",
    "Befattning",
    "Skyddad",
]


def student(
    key: str,
    given: str,
    family: str,
    school: str = "11111111",
    *,
    marking: str = "Nej",
    email: str | None = None,
    school_name: str | None = None,
    school_type: str = "GR",
    year: str = "7",
    klass: str = "7A",
) -> list[str]:
    """A row under STUDENT_HEADER; one row per placement."""
    email = email if email is not None else f"{key.lower()}@edu.example.se"
    return [
        key,
        given,
        family,
        email,
        school,
        school_name or f"Skola {school}",
        school_type,
        year,
        klass,
        marking,
    ]


def staff(
    key: str,
    given: str,
    family: str,
    school: str = "11111111",
    role: str = "Lärare",
    *,
    marking: str = "Nej",
    email: str | None = None,
) -> list[str]:
    """A row under STAFF_HEADER; one row per placement."""
    email = email if email is not None else f"{key.lower()}@edu.example.se"
    return [key, given, family, email, school, role, marking]


def write_csv(
    path: Path,
    header: list[str],
    rows: list[list[str]],
    *,
    encoding: str = "utf-8",
    delimiter: str = ";",
    bom: bool = False,
) -> Path:
    lines = [delimiter.join(header), *(delimiter.join(r) for r in rows)]
    data = ("\r\n".join(lines) + "\r\n").encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path
