"""The vendor's externalId: stable, opaque, and never a personal identity number.

By default it is HMAC-SHA256 over the person's kind and source key with a secret key the
municipality keeps: the same person always gets the same value, and nobody without the key can
turn it back into a student id or personnummer.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from connector.config import ExternalIdConfig
from connector.people.model import Person

# YYMMDD-NNNN or YYYYMMDDNNNN, with or without separator; samordningsnummer (day + 60) and
# temporary numbers with a letter in the serial part look the same from here.
_PERSONAL_IDENTITY_NUMBER = re.compile(r"^(\d{2})?\d{6}[-+]?[0-9A-Za-z]\d{3}$")


# The same, anywhere in a text ("200101011234@skola.se"), with a real month and day (a
# samordningsnummer adds 60 to the day), and a valid check digit: a value a mapping made.
_PERSONAL_IDENTITY_NUMBER_IN_TEXT = re.compile(
    r"(?<![0-9])(?:19|20)?(\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]|6[1-9]|[78]\d|9[01]))"
    r"[-+]?(\d{4})(?![0-9])"
)


def looks_like_personal_identity_number(value: str) -> bool:
    return bool(_PERSONAL_IDENTITY_NUMBER.match(value.strip()))


def _luhn(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(int(d) for d in digits):
        product = digit * (2 - position % 2)
        total += product - 9 if product > 9 else product
    return total % 10 == 0


def contains_personal_identity_number(text: str) -> bool:
    """Whether a text holds what is, by its date and check digit, a personnummer."""
    return any(_luhn(m[1] + m[2]) for m in _PERSONAL_IDENTITY_NUMBER_IN_TEXT.finditer(text))


class ExternalIdMaker:
    def __init__(self, config: ExternalIdConfig) -> None:
        self._mode = config.mode
        self._secret = config.secret() if config.mode == "hmac" else b""

    def for_person(self, person: Person) -> str:
        """Raise ValueError when the configured mode would expose a personal identity number."""
        if self._mode == "source_key":
            if looks_like_personal_identity_number(person.source_key):
                raise ValueError(
                    "the source key looks like a personal identity number and may not be sent; "
                    "use external_id.mode: hmac"
                )
            return person.source_key
        message = f"{person.kind.value}:{person.source_key}".encode()
        # The one-shot form: the same value as hmac.new(...).hexdigest(), in a third of the time.
        return hmac.digest(self._secret, message, "sha256").hex()[:32]

    def for_name(self, name: str) -> str:
        """An opaque 32-hex id for a typed name that is not a person ("school:<code>"): the
        same keyed HMAC as a person's (an unkeyed SHA-256 where the mode has no key)."""
        message = f"name:{name}".encode()
        if self._secret:
            return hmac.digest(self._secret, message, "sha256").hex()[:32]
        return hashlib.sha256(message).hexdigest()[:32]

    def digest(self, text: str) -> str:
        """An opaque fingerprint of a short text (a marking value) that can be kept without
        keeping the text: keyed where there is a key."""
        message = f"digest:{text}".encode()
        if self._secret:
            return hmac.digest(self._secret, message, "sha256").hex()[:16]
        return hashlib.sha256(message).hexdigest()[:16]
