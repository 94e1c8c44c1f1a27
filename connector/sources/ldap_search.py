"""Talking to the directory: bind to the first server that answers, search paged, complete AD's
ranged values, and fail as a whole on any incomplete result."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field

from ldap3 import BASE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException, LDAPNoSuchObjectResult
from ldap3.utils.config import set_config_parameter

from connector.config import LdapSourceConfig
from connector.errors import SourceError
from connector.sources.ldap_entries import CHANGE_TIME_ATTRIBUTES, RANGED, Raw, split_ranged

# Entries are read by attribute names folded here (see entries), so ldap3 need not wrap every
# entry in its case-insensitive dictionaries: a tenth of the time of reading 8,000 entries.
set_config_parameter("CASE_INSENSITIVE_ATTRIBUTE_NAMES", False)


@dataclass(slots=True)
class Counts:
    entries: int = 0
    disabled: int = 0
    referrals: int = 0
    by_base: dict[str, int] = field(default_factory=dict)


def close_connection(connection: Connection) -> None:
    """Unbind, and close the socket even where there was no bind (a failed open or StartTLS
    leaves ldap3's socket open)."""
    with contextlib.suppress(LDAPException, OSError):
        connection.unbind()
    sock = getattr(connection, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def describe(exc: BaseException) -> str:
    """A reason for the log: the error's kind and message, never a password."""
    message = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {message}"[:300]


def raw_attributes(response_entry: dict) -> Raw:  # type: ignore[type-arg]
    return {k.casefold(): list(v) for k, v in response_entry["raw_attributes"].items()}


class DirectorySearch:
    """One source's way into the directory (its servers, bind, TLS, bases and page size)."""

    def __init__(self, config: LdapSourceConfig, *, member_of: bool = False) -> None:
        """`member_of`: read memberOf even without group rules (role rules name groups)."""
        self.config = config
        self.name = config.name
        self.member_of = member_of or bool(config.group_rules)

    def _tls(self) -> Tls:
        config = self.config
        return Tls(
            validate=ssl.CERT_REQUIRED if config.verify_tls else ssl.CERT_NONE,
            ca_certs_file=str(config.ca_file) if config.ca_file else None,
        )

    def connect(self) -> Connection:
        """Bind to the first server that answers; fail with every server's reason otherwise."""
        config = self.config
        reasons = []
        for url in config.servers:
            secure = url.lower().startswith("ldaps://")
            server = Server(
                url,
                use_ssl=secure,
                tls=self._tls() if (secure or config.start_tls) else None,
                connect_timeout=config.timeout_seconds,
                get_info="NO_INFO",
            )
            connection = Connection(
                server,
                user=config.bind_dn,
                password=config.bind_password(),
                read_only=True,
                raise_exceptions=True,
                receive_timeout=int(max(config.timeout_seconds, 1)),
                auto_referrals=False,
                # Entries are read from their raw bytes; without this, ldap3 would also decode
                # and format every value (half the read time for a big directory).
                check_names=False,
            )
            try:
                connection.open()
                if config.start_tls:
                    connection.start_tls()
                connection.bind()
                return connection
            except (LDAPException, OSError, ssl.SSLError) as exc:
                reasons.append(f"{url}: {describe(exc)}")
                close_connection(connection)
        raise SourceError(self.name, "; ".join(reasons))

    def attributes_to_read(self) -> list[str]:
        config = self.config
        names = [v for v in config.attributes.model_dump().values() if v]
        if config.protected_identity.attribute:
            names.append(config.protected_identity.attribute)
        if self.member_of:
            names.append("memberOf")
        if config.active_directory:
            names.append("userAccountControl")
        # When the entry last changed, where the server says (connector_change_latency_seconds).
        names += CHANGE_TIME_ATTRIBUTES
        return sorted(set(names), key=str.casefold)

    def entries(
        self,
        connection: Connection,
        search_filter: str,
        counts: Counts,
        bases: list[str],
        *,
        attributes: list[str] | None = None,
    ) -> Iterator[tuple[str, Raw]]:
        """Every entry under the bases (with `attributes`, by default a person's); a base whose
        search is incomplete fails the read."""
        attributes = attributes or self.attributes_to_read()
        for base in bases:
            before = counts.entries
            try:
                yield from self._entries_under(connection, base, search_filter, attributes, counts)
            except LDAPException as exc:
                raise self._search_error(connection, base, exc) from None
            result = connection.result or {}
            if result.get("result", 0) != 0:
                raise SourceError(
                    self.name,
                    f"{connection.server.name}: the search under {base!r} is incomplete "
                    f"({result.get('description')})",
                )
            counts.by_base[base] = counts.entries - before

    def _entries_under(
        self,
        connection: Connection,
        base: str,
        search_filter: str,
        attributes: list[str],
        counts: Counts,
    ) -> Iterator[tuple[str, Raw]]:
        results = connection.extend.standard.paged_search(
            search_base=base,
            search_filter=search_filter,
            search_scope=SUBTREE,
            attributes=attributes,
            paged_size=self.config.page_size,
            generator=True,
        )
        for item in results:
            if item.get("type") != "searchResEntry":
                counts.referrals += 1
                continue
            counts.entries += 1
            raw = raw_attributes(item)
            if self.config.active_directory:
                raw = self.complete_ranged(connection, item["dn"], raw)
            yield item["dn"], raw

    def _search_error(self, connection: Connection, base: str, exc: LDAPException) -> SourceError:
        """A failed search, named by server and base DN: with several of each, which one?"""
        server = connection.server.name
        if isinstance(exc, LDAPNoSuchObjectResult):
            return SourceError(
                self.name,
                f"{server}: the base DN {base!r} does not exist "
                "(or the bind account may not see it)",
            )
        return SourceError(
            self.name, f"{server}: the search under {base!r} failed: {describe(exc)}"
        )

    def complete_ranged(self, connection: Connection, dn: str, raw: Raw) -> Raw:
        """AD returns large multi-valued attributes in ranges (member;range=0-1499): fetch the rest."""
        for name, (_, high) in split_ranged(raw).items():
            values: list[bytes] = []
            for key in [k for k in raw if k.startswith(name + ";range=")]:
                values += raw.pop(key)
            while high != "*":
                start = int(high) + 1
                connection.search(
                    dn, "(objectClass=*)", search_scope=BASE, attributes=[f"{name};range={start}-*"]
                )
                if not connection.response:
                    break
                high = "*"
                for key, chunk in raw_attributes(connection.response[0]).items():
                    match = RANGED.match(key)
                    if match and match["name"].casefold() == name:
                        values += chunk
                        high = match["high"]
            raw[name] = values
        return raw

    def exists(self, connection: Connection, dn: str) -> bool:
        try:
            connection.search(dn, "(objectClass=*)", search_scope=BASE, attributes=["1.1"])
        except LDAPNoSuchObjectResult:
            return False
        return bool(connection.response)

    def member_count(self, connection: Connection, group: str) -> int | None:
        """How many members the group has (member, uniqueMember); None if it does not exist."""
        try:
            connection.search(
                group, "(objectClass=*)", search_scope=BASE, attributes=["member", "uniqueMember"]
            )
        except LDAPNoSuchObjectResult:
            return None
        if not connection.response:
            return None
        raw = raw_attributes(connection.response[0])
        if self.config.active_directory:
            raw = self.complete_ranged(connection, group, raw)
        return len(raw.get("member", [])) + len(raw.get("uniquemember", []))
