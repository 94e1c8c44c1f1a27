"""EGIL's ids: lower-case RFC 4122 UUIDs, which the server uses as each object's `id`.

A person's UUID is their opaque 32-hex externalId (the keyed HMAC of people/externalid.py)
laid out as a UUIDv8: the same 128 bits with the version nibble set to 8 and the variant bits
to 10. So the same person keeps the same UUID across transfers, renames and restarts, and
nothing turns it back into a student id or a personnummer. Every other object gets its 32-hex
from the same keyed HMAC over a typed name (`school:<code>`, ...), then the same layout.
Pure: no I/O, nothing but the id maker it is given.
"""

from __future__ import annotations

import re
from typing import Protocol

HEX32 = re.compile(r"^[0-9a-f]{32}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class NameHasher(Protocol):
    def for_name(self, name: str) -> str: ...


def egil_uuid(hex32: str) -> str:
    """The UUIDv8 form of 32 hex digits (lower case). Raises ValueError for anything else."""
    value = hex32.lower()
    if not HEX32.match(value):
        raise ValueError("not 32 hex digits")
    bits = int(value, 16)
    bits = (bits & ~(0xF << 76)) | (0x8 << 76)  # version 8
    bits = (bits & ~(0x3 << 62)) | (0x2 << 62)  # variant 10 (RFC 4122)
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def is_egil_uuid(value: str) -> bool:
    return bool(UUID.match(value))


class EgilIds:
    """The UUIDs of one target's objects (one id maker: one municipality's key)."""

    def __init__(self, hasher: NameHasher) -> None:
        self._hasher = hasher

    def _named(self, name: str) -> str:
        return egil_uuid(self._hasher.for_name(name))

    def person(self, external_id: str) -> str:
        """A person's UUID from their externalId: its own bits where it is the keyed HMAC
        (32 hex), else (external_id.mode: source_key) the keyed HMAC over it."""
        if HEX32.match(external_id):
            return egil_uuid(external_id)
        return self._named(f"person:{external_id}")

    def organisation(self, municipality_code: str) -> str:
        return self._named(f"organisation:{municipality_code}")

    def school_unit_group(self, name: str) -> str:
        return self._named(f"school_unit_group:{name}")

    def school_unit(self, code: str) -> str:
        return self._named(f"school:{code}")

    def student_group(self, code: str, group_type: str, name: str) -> str:
        return self._named(f"group:{code}:{group_type}:{name}")

    def employment(self, person_uuid: str, code: str) -> str:
        return self._named(f"employment:{person_uuid}:{code}")

    def activity(self, group_uuid: str) -> str:
        return self._named(f"activity:{group_uuid}")
