"""Sources of people and schools. Each turns one kind of municipal system into the neutral model."""

from __future__ import annotations

from typing import Protocol

from connector.config import Config
from connector.people.model import ReadContext, SourceRead
from connector.sources.csv_roster import CsvRosterSource
from connector.sources.ldap_directory import LdapDirectorySource
from connector.sources.ss12000 import Ss12000Source


class Source(Protocol):
    name: str

    def read(self, context: ReadContext | None = None) -> SourceRead:
        """Read everything (or what changed, where the source can); raise SourceError when
        the source as a whole cannot be read."""
        ...


def build_sources(config: Config) -> list[Source]:
    sources: list[Source] = []
    for source_config in config.sources:
        if source_config.type == "csv":
            sources.append(CsvRosterSource(source_config))
        elif source_config.type == "ldap":
            codes = config.school_codes()
            role_groups = config.roles.group_dns(codes)
            sources.append(LdapDirectorySource(source_config, codes, role_groups))
        else:
            sources.append(Ss12000Source(source_config))
    return sources
