"""The fast path for plain addresses agrees with email-validator."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.people.emails import normalize_email


def reference(value: str) -> str | None:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def ours(value: str) -> str | None:
    try:
        return normalize_email(value)
    except ValueError:
        return None


@pytest.mark.parametrize(
    "value",
    [
        "asa.oberg@edu.Example.SE",
        "Karin.Sjöberg@edu.example.se",
        "åsa@exempel.se",
        "a@b",
        "a..b@example.se",
        ".a@example.se",
        "a@-example.se",
        "a@example.s",
        "x" * 65 + "@example.se",
        "o'brien+tag@skola.example.se",
        "user@sub.skola.example.se",
        "no-at-sign",
        "a@b@example.se",
    ],
)
def test_agrees_with_email_validator(value: str) -> None:
    assert ours(value) == reference(value)


@settings(max_examples=300, deadline=None)
@given(st.emails())
def test_agrees_on_generated_addresses(value: str) -> None:
    assert ours(value) == reference(value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcAB.@-_+'é1", max_size=30))
def test_agrees_on_junk(value: str) -> None:
    assert ours(value) == reference(value)
