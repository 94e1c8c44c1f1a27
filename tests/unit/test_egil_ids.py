"""EGIL's ids (connector/targets/egil/ids.py): lower-case RFC 4122 UUIDs (the UUIDv8 layout
of the keyed HMAC), stable for a person across transfers, renames and restarts, and never a
function of a personnummer without the key."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from connector.config import ExternalIdConfig
from connector.people.externalid import ExternalIdMaker
from connector.people.model import Placement
from connector.targets.egil.ids import EgilIds, egil_uuid, is_egil_uuid
from tests.support.egil import EGIL_IDS, IDS, SODER, student, uuid_of


def test_the_uuid_is_the_hex_with_version_8_and_the_rfc_4122_variant() -> None:
    hex32 = "ffffffffffffffffffffffffffffffff"
    made = egil_uuid(hex32)
    parsed = uuid.UUID(made)
    assert made == str(parsed) == made.lower()
    assert parsed.version == 8
    assert parsed.variant == uuid.RFC_4122
    assert made == "ffffffff-ffff-8fff-bfff-ffffffffffff"
    assert egil_uuid("0" * 32) == "00000000-0000-8000-8000-000000000000"


def test_every_other_bit_of_the_hex_is_kept() -> None:
    hex32 = "0123456789abcdef0123456789abcdef"
    made = egil_uuid(hex32).replace("-", "")
    kept = [i for i in range(32) if i not in (12, 16)]
    assert [made[i] for i in kept] == [hex32[i] for i in kept]
    # The variant nibble keeps its two low bits: "0" (0000) becomes "8" (1000).
    assert made[16] == "8"


@pytest.mark.parametrize("bad", ["", "abc", "g" * 32, "0" * 31, "0" * 33, "12345678-1234"])
def test_anything_but_32_hex_digits_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        egil_uuid(bad)


def test_upper_case_hex_gives_the_lower_case_uuid() -> None:
    assert egil_uuid("ABCDEF" * 5 + "AB") == egil_uuid("abcdef" * 5 + "ab")


def test_a_person_keeps_their_uuid_across_transfer_rename_and_restart() -> None:
    anna = student("S100")
    moved = replace(anna, placements=(Placement(SODER, "GY", "1", "1A"),))
    renamed = replace(anna, given_name="Annie", family_name="Berg", email="annie@x.se")
    restarted = EgilIds(ExternalIdMaker(ExternalIdConfig(key="test-id-key-2b8d41")))
    first = uuid_of(anna)
    assert is_egil_uuid(first)
    assert uuid_of(moved) == uuid_of(renamed) == first
    assert restarted.person(IDS.for_person(anna)) == first
    assert uuid_of(student("S101")) != first


def test_the_uuid_depends_on_the_key_not_only_on_the_source_key() -> None:
    other = ExternalIdMaker(ExternalIdConfig(key="another-municipality"))
    anna = student("200101011234")  # a personnummer as a CSV's key: it only enters the HMAC
    mine, theirs = uuid_of(anna), EgilIds(other).person(other.for_person(anna))
    assert mine != theirs
    assert "200101011234" not in mine.replace("-", "")


def test_other_objects_get_distinct_stable_uuids_by_type_and_name() -> None:
    made = [
        EGIL_IDS.organisation("1234"),
        EGIL_IDS.school_unit_group("Gymnasiet"),
        EGIL_IDS.school_unit("11111111"),
        EGIL_IDS.school_unit("22222222"),
        EGIL_IDS.student_group("11111111", "Klass", "7A"),
        EGIL_IDS.student_group("11111111", "Undervisning", "7A"),
        EGIL_IDS.student_group("22222222", "Klass", "7A"),
        EGIL_IDS.employment(uuid_of(student("T1")), "11111111"),
        EGIL_IDS.activity(EGIL_IDS.student_group("11111111", "Klass", "7A")),
    ]
    assert all(is_egil_uuid(u) for u in made)
    assert len(set(made)) == len(made)
    assert EGIL_IDS.school_unit("11111111") == made[2]


def test_a_source_key_id_mode_still_gives_a_uuid() -> None:
    maker = ExternalIdMaker(ExternalIdConfig(mode="source_key"))
    ids = EgilIds(maker)
    made = ids.person("elev-42")
    assert is_egil_uuid(made) and made == ids.person("elev-42")
    assert ids.person("elev-43") != made
