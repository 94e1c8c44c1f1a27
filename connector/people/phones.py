"""Mobile numbers from the sources, for a vendor's SMS login (sent only where a mapping opts
in): checked and written one way, E.164 (`+46701234567`), whatever the source wrote."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-()./]")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def normalize_mobile(value: str, country_code: str = "46") -> str:
    """`070-123 45 67`, `0046 70 123 45 67` or `+46701234567` -> `+46701234567`; a number
    without a country code is taken as Swedish. ValueError if it is not a phone number."""
    digits = _SEPARATORS.sub("", value.strip())
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.startswith("0"):
        digits = f"+{country_code}{digits[1:]}"
    if not _E164.match(digits):
        raise ValueError("not a phone number")
    return digits
