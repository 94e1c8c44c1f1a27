"""E-mail addresses from the sources: checked and normalised, fast for the common case.

email-validator is thorough (IDNA, Unicode local parts) but slow: at 100,000 people it took
most of a cycle's CPU. Plain ASCII addresses - nearly all school addresses - are checked
here against RFC 5321's limits with one regular expression; anything else goes to
email-validator. Both normalise the same way (the domain in lower case).
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN = re.compile(rf"^({_ATOM}(?:\.{_ATOM})*)@((?:{_LABEL}\.)+[A-Za-z]{{2,63}})$")


def normalize_email(value: str) -> str:
    """The address with its domain in lower case; ValueError if it is not a valid address."""
    match = _PLAIN.match(value)
    if match and len(match[1]) <= 64 and len(value) <= 254:
        return f"{match[1]}@{match[2].lower()}"
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValueError("not a valid e-mail address") from None
