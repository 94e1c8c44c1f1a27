"""The one text-safety rule (connector.model.unsafe_text) for free text bound for a vendor."""

from __future__ import annotations

import pytest

from connector.people.model import unsafe_text

FORMULA = "starts like a spreadsheet formula (=, +, -, @)"
CONTROL = "holds control characters (a line break?)"
BIDI = "holds bidirectional text controls"
ZERO_WIDTH = "holds zero-width characters"
MOJIBAKE = "looks like mojibake (UTF-8 read as Windows-1252)"

BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
ZERO_WIDTH_CHARACTERS = "\u200b\u200c\u200d\u2060\ufeff"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('=HYPERLINK("http://evil.example","x")', FORMULA),
        ("+46701234567", FORMULA),
        ("-2+3+cmd|' /C calc'!A0", FORMULA),
        ("@SUM(A1)", FORMULA),
        (" =1+1", FORMULA),  # a value is judged as it would be once stripped, too
        ("Anna\nMaria", CONTROL),
        ("bara\rvagnretur", CONTROL),
        ("\x00nolltecken", CONTROL),
        ("Anna\x85Maria", CONTROL),  # NEL, a C1 control
        ("Anna\u2028Maria", CONTROL),  # LINE SEPARATOR
        *((f"Anna{c}Ek", BIDI) for c in BIDI_CONTROLS),
        ("\u202egpj.exe", BIDI),
        *((f"An{c}na", ZERO_WIDTH) for c in ZERO_WIDTH_CHARACTERS),
        ("\ufeffAnna", ZERO_WIDTH),
        ("HÃ¥kansson", MOJIBAKE),
        ("Ã…sa", MOJIBAKE),
        ("Ã„rla", MOJIBAKE),
        ("Ã–stlund", MOJIBAKE),
        ("AndrÃ©", MOJIBAKE),
        ("Skola â€“ Norr", MOJIBAKE),  # "–" (E2 80 93)
        ("BjÃ¶rkskolan", MOJIBAKE),
    ],
)
def test_unsafe_text_names_the_reason_and_never_the_value(value: str, reason: str) -> None:
    assert unsafe_text(value) == reason


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Åsa",
        "Öberg-Ärlig",
        "Håkansson",
        "ÅSA ÖBERG",
        "O'Brien",
        "O’Brien",
        "Anna-Karin",
        "Zoë",
        "José",
        "Chloé",
        "Łukasz",
        "Şükrü",
        "Ørjan",
        "Straße",
        "李小龍",
        "Мария",
        "محمد",
        "Åsa 😀",
        "7B",
        "Lärare",
        "Speciallärare/specialpedagog",
        "asa.oberg@skola.example.se",
        "Skola 1 (F–9)",
        "Ekeby skola, Norra",
        "a=b",  # a formula character later in a value is harmless
    ],
)
def test_names_in_any_script_are_safe(value: str) -> None:
    assert unsafe_text(value) is None
