"""The key the tests' configs derive externalIds with, and the externalId that makes."""

from __future__ import annotations

from connector.config import ExternalIdConfig
from connector.people.externalid import ExternalIdMaker
from connector.people.model import Kind, Person

ID_KEY = "test-id-key-2b8d41"


def opaque_id(key: str, kind: Kind = Kind.STUDENT) -> str:
    """The externalId the connector sends for this source key, under a workspace's config."""
    maker = ExternalIdMaker(ExternalIdConfig(key=ID_KEY))
    return maker.for_person(Person(key, kind, "", "", None, None, False))
