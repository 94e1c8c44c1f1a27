"""A ref as the logs give it names its person: a SCIM target's (the externalId's first 12
hex digits) and an EGIL target's (the UUID's first 12 characters, a dash among them), for
`explain` (from the sources' 32-hex ids) and `history` (from the state's ids) alike."""

from __future__ import annotations

from connector.people.lookup import looks_like_ref, refers_to
from connector.targets.egil.ids import egil_uuid
from connector.targets.scim.outcome import ref

HEX = "3acec7585378a1b2c3d4e5f60718293a"


def test_an_egil_ref_is_a_ref() -> None:
    uuid = egil_uuid(HEX)
    assert looks_like_ref(ref(uuid)) and "-" in ref(uuid)
    assert not looks_like_ref("erik.lind@x")  # an address is not a ref
    assert not looks_like_ref("3acec758")  # too short


def test_an_egil_ref_names_the_person_by_their_hex_id_and_by_their_uuid() -> None:
    uuid = egil_uuid(HEX)
    assert refers_to(ref(uuid), HEX)  # explain: the sources know the 32-hex id
    assert refers_to(ref(uuid), uuid)  # history: an EGIL target's state holds the UUID
    assert refers_to(ref(HEX), HEX) and refers_to(HEX, HEX)
    other = "3acec7595378a1b2c3d4e5f60718293a"
    assert not refers_to(ref(uuid), other)
    assert not refers_to(ref(egil_uuid(other)), HEX)
