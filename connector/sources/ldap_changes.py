"""Whether the directory changed since a source last read it, asked cheaply, so a daemon's
cycle need not read every entry again when nothing changed (cycle/quiet.py).

Active Directory says it in one number: the domain controller's `highestCommittedUSN` (its
rootDSE) grows with every change it commits, a deletion included. The marker is that number,
with the DC it came from: another DC (a failover) counts as a change.

OpenLDAP has no such number everywhere (contextCSN needs the syncprov overlay), so the marker
asks which entries under the source's bases - its people, its study groups, the groups its
rules name - have a `modifyTimestamp` since a moment shortly before the read (a margin for
clock skew), and remembers them: the next check that finds only those has found no change. A
deletion leaves no timestamp: it is seen by the full read a daemon makes at least every
`daemon.full_plan_every_minutes`.

A marker holds digests of DNs and times only, never what an entry says, and lives in memory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ldap3 import BASE, SUBTREE, Connection
from ldap3.core.exceptions import LDAPException, LDAPNoSuchObjectResult

from connector.config import LdapSourceConfig
from connector.errors import SourceError
from connector.sources.ldap_search import describe

# How far before a read the timestamps are asked from: the directory's clock may differ
# from ours by this much without a change being missed.
CLOCK_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class ChangeMarker:
    """What the directory looked like at a read, for telling whether it changed since."""

    server: str
    usn: str | None = None  # Active Directory: the DC's identity and highestCommittedUSN
    since: str | None = None  # else: modifyTimestamp asked from (generalized time)
    stamped: frozenset[tuple[str, str]] = frozenset()  # (DN's digest, modifyTimestamp) found

    def unchanged_at(self, now: ChangeMarker) -> bool:
        """`now` (asked with this marker) shows no change since this one was taken."""
        if now.server != self.server:
            return False
        if self.usn is not None:
            return now.usn == self.usn
        # An entry gone from the answer was deleted or moved (a new stamp is a new pair).
        return now.stamped == self.stamped


def _digest(dn: str) -> str:
    """A DN may name a person (a protected one too): only its digest is kept."""
    return hashlib.sha256(dn.casefold().encode()).hexdigest()[:24]


def _generalized(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


class DirectoryChanges:
    def __init__(self, config: LdapSourceConfig, groups: list[str]) -> None:
        """`groups`: DNs of the groups the source's rules name (their members place people)."""
        self.config = config
        self.groups = groups

    def marker(self, connection: Connection, previous: ChangeMarker | None) -> ChangeMarker:
        """The directory now: asked relative to `previous` where there is one (same kind)."""
        server = str(connection.server.name)
        try:
            usn = self._usn(connection)
            if usn is not None:
                return ChangeMarker(server, usn=usn)
            since = (
                previous.since
                if previous is not None and previous.since is not None
                else _generalized(datetime.now(UTC) - CLOCK_MARGIN)
            )
            return ChangeMarker(server, since=since, stamped=self._stamped(connection, since))
        except LDAPException as exc:
            raise SourceError(
                self.config.name, f"{server}: asking what changed failed: {describe(exc)}"
            ) from None

    def _usn(self, connection: Connection) -> str | None:
        """Active Directory's rootDSE: which DC (dsServiceName) and how far it has come."""
        connection.search(
            "",
            "(objectClass=*)",
            search_scope=BASE,
            attributes=["highestCommittedUSN", "dsServiceName"],
        )
        if not connection.response:
            return None
        raw = {k.casefold(): v for k, v in connection.response[0]["raw_attributes"].items()}
        usn = raw.get("highestcommittedusn")
        if not usn:
            return None
        service = (raw.get("dsservicename") or [b""])[0]
        return f"{service.decode(errors='replace')}#{usn[0].decode(errors='replace')}"

    def _stamped(self, connection: Connection, since: str) -> frozenset[tuple[str, str]]:
        """Every entry under the source's bases, and every rule's group, changed since."""
        found: set[tuple[str, str]] = set()
        bases = [(b, SUBTREE) for b in self.config.base_dns]
        study = self.config.study_groups
        if study is not None:
            bases += [(b, SUBTREE) for b in study.base_dns]
        bases += [(g, BASE) for g in self.groups]
        for base, scope in bases:
            try:
                entries = connection.extend.standard.paged_search(
                    base,
                    f"(modifyTimestamp>={since})",
                    search_scope=scope,
                    attributes=["modifyTimestamp"],
                    paged_size=self.config.page_size,
                    generator=True,
                )
                for entry in entries:
                    if entry.get("type") != "searchResEntry":
                        continue
                    stamp = entry["raw_attributes"].get("modifyTimestamp") or [b""]
                    found.add((_digest(str(entry["dn"])), stamp[0].decode(errors="replace")))
            except LDAPNoSuchObjectResult:
                found.add((_digest(base), "missing"))  # a base or group gone is a change
        return frozenset(found)
