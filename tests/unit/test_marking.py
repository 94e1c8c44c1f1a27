"""The protected-identity marking rule shared by every source (connector.sources.marking)."""

from __future__ import annotations

import pytest

from connector.errors import SourceError
from connector.sources.marking import MarkingReader


@pytest.mark.parametrize(
    ("values", "protected"),
    [
        (["Nej"], False),
        ([" nej "], False),
        (["NEJ"], False),
        (["Ja"], True),
        (["0"], True),
        ([""], True),
        (["  "], True),
        ([None], True),
        ([], True),
        (["Nej", "Ja"], True),  # several values: any other than not-protected protects
        (["Nej", "Nej"], False),
    ],
)
def test_only_a_not_protected_value_means_not_protected(
    values: list[str | None], protected: bool
) -> None:
    assert MarkingReader(["Nej"]).protected(values) is protected


def test_values_other_than_not_protected_are_counted_per_record() -> None:
    reader = MarkingReader(["Nej"])
    for values in (["Ja"], ["0"], ["0", "0"], ["Nej"], [""]):
        reader.protected(values)
    assert reader.other_values == {"ja": 1, "0": 2}
    assert (reader.records, reader.marked) == (5, 4)


def test_a_marking_absent_from_every_record_fails_the_source() -> None:
    reader = MarkingReader(["Nej"])
    reader.protected([""])
    reader.protected([None])
    with pytest.raises(SourceError, match="empty or missing in all 2 records"):
        reader.require_present("students", "column 'Skyddad'")


def test_one_record_with_a_marking_is_enough() -> None:
    reader = MarkingReader(["Nej"])
    reader.protected([""])
    reader.protected(["Ja"])
    reader.require_present("students", "column 'Skyddad'")


def test_an_unreadable_marking_protects_and_counts_as_present() -> None:
    reader = MarkingReader(["Nej"])
    assert reader.unreadable() is True
    reader.require_present("directory", "attribute 'x'")


def test_a_source_assumed_unmarked_is_never_protected_and_never_fails() -> None:
    reader = MarkingReader([], assume_not_protected=True)
    assert reader.protected([]) is False
    reader.require_present("staff", "none")


def test_too_few_records_to_judge_do_not_fail() -> None:
    reader = MarkingReader(["Ingen"])
    reader.protected([None])
    reader.require_present("sis", "securityMarking", at_least=10)


# -- found by mutation testing (mutation/SURVIVORS.md) ---------------------------------------


def test_unreadable_markings_are_counted_as_records_read_and_marked() -> None:
    reader = MarkingReader(["Nej"])
    reader.protected([None])
    reader.unreadable()
    reader.unreadable()
    assert (reader.records, reader.marked) == (3, 2)


def test_a_single_record_without_a_marking_fails_the_source_and_names_it() -> None:
    reader = MarkingReader(["Nej"])
    reader.protected([""])
    with pytest.raises(SourceError) as raised:
        reader.require_present("students", "column 'Skyddad'")
    assert raised.value.source == "students"
    assert raised.value.reason == (
        "the protected-identity marking (column 'Skyddad') is empty or missing in all 1 records: "
        "nobody can be shown not to be protected, so nothing is sent or taken away for anyone "
        "from this source"
    )


def test_exactly_as_many_records_as_needed_to_judge_are_judged() -> None:
    reader = MarkingReader(["Ingen"])
    for _ in range(10):
        reader.protected([None])
    with pytest.raises(SourceError):
        reader.require_present("sis", "securityMarking", at_least=10)
