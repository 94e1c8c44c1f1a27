"""Before a create: does the vendor already hold the object? Asked of this cycle's listing
when there is one, else with one combined filter (or one per attribute, for a vendor that
cannot combine them). An ambiguous answer is a Conflict: nothing is changed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog

from connector.targets.scim.client import ScimClient, ScimError
from connector.targets.scim.outcome import Conflict
from connector.targets.scim.resources import quote_filter_value

log = structlog.get_logger(__name__)


def _matches(resource: dict[str, Any], attribute: str, value: str) -> bool:
    folded = value.casefold()
    if attribute == "emails.value":
        return any(
            isinstance(e, dict) and str(e.get("value", "")).casefold() == folded
            for e in resource.get("emails") or []
        )
    return str(resource.get(attribute, "")).casefold() == folded


class VendorIndex:
    """The vendor's users and groups as listed in this cycle, for linking without lookups."""

    def __init__(self, users: Iterable[dict[str, Any]], groups: Iterable[dict[str, Any]]) -> None:
        self._by_key: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for resource_type, resources, names in (
            ("Users", users, ("userName",)),
            ("Groups", groups, ("displayName",)),
        ):
            for resource in resources:
                keys = {("externalId", str(resource.get("externalId") or ""))}
                keys |= {(n, str(resource.get(n) or "").casefold()) for n in names}
                for email in resource.get("emails") or []:
                    if isinstance(email, dict) and email.get("value"):
                        keys.add(("emails.value", str(email["value"]).casefold()))
                for attribute, value in keys:
                    if value:
                        self._by_key.setdefault((resource_type, attribute, value), []).append(
                            resource
                        )

    def lookup(
        self, resource_type: str, ext: str, names: dict[str, str]
    ) -> dict[str, list[dict[str, Any]]]:
        found = {"externalId": self._by_key.get((resource_type, "externalId", ext), [])}
        for attribute, value in names.items():
            found[attribute] = self._by_key.get((resource_type, attribute, value.casefold()), [])
        return found

    @staticmethod
    def classify(
        resources: list[dict[str, Any]], ext: str, names: dict[str, str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Which of a combined search's results matched which part of the filter."""
        found = {"externalId": [r for r in resources if r.get("externalId") == ext]}
        for attribute, value in names.items():
            found[attribute] = [r for r in resources if _matches(r, attribute, value)]
        return found


def resolve(
    ext: str, found: dict[str, list[dict[str, Any]]], names: dict[str, str]
) -> dict[str, Any] | None:
    """One account to link, None, or a Conflict (see Applier._find_existing)."""
    by_external_id = found.get("externalId", [])
    if len(by_external_id) > 1:
        raise Conflict(f"{len(by_external_id)} vendor accounts carry the same externalId")
    if by_external_id:
        return by_external_id[0]
    candidates: dict[str, dict[str, Any]] = {}
    for attribute in names:
        matches = found.get(attribute, [])
        if len(matches) > 1:
            raise Conflict(f"{len(matches)} vendor accounts match the same {attribute}")
        candidates.update((m["id"], m) for m in matches)
    if len(candidates) > 1:
        raise Conflict(f"{len(candidates)} different vendor accounts match by {', '.join(names)}")
    if not candidates:
        return None
    (match,) = candidates.values()
    other = match.get("externalId")
    if other and other != ext:
        raise Conflict("the matching vendor account belongs to another externalId")
    return match


class LookupMixin:
    """The Applier's lookups before creates."""

    client: ScimClient
    index: VendorIndex | None
    _external_id_filter: bool
    _combined_filter: bool

    def _search_one(self, resource_type: str, filter_: str, what: str) -> dict[str, Any] | None:
        found = self.client.search(resource_type, filter_)
        if len(found) > 1:
            raise Conflict(f"{len(found)} vendor {resource_type.lower()} match the same {what}")
        return found[0] if found else None

    def _find_existing(
        self, resource_type: str, ext: str, names: dict[str, str], *, fresh: bool = False
    ) -> dict[str, Any] | None:
        """Link candidates: by externalId; else by each naming attribute (userName, e-mail).

        Several different candidates, or one that carries another externalId, is a conflict:
        nothing is changed and it is reported. Answered from this cycle's listing of the
        vendor when there is one; else with one combined filter (or one per attribute, for a
        vendor that cannot combine them).
        """
        if self.index is not None and not fresh:
            return resolve(ext, self.index.lookup(resource_type, ext, names), names)
        if self._combined_filter:
            clauses = [f"externalId eq {quote_filter_value(ext)}"] + [
                f"{attribute} eq {quote_filter_value(value)}" for attribute, value in names.items()
            ]
            try:
                found = self.client.search(resource_type, " or ".join(clauses))
            except ScimError as exc:
                if exc.status not in (400, 501):
                    raise
                log.warning("scim.filter.unsupported", attribute="or")
                self._combined_filter = False
            else:
                return resolve(ext, VendorIndex.classify(found, ext, names), names)
        return self._find_one_by_one(resource_type, ext, names)

    def _find_one_by_one(
        self, resource_type: str, ext: str, names: dict[str, str]
    ) -> dict[str, Any] | None:
        matches: dict[str, list[dict[str, Any]]] = {"externalId": []}
        if self._external_id_filter:
            try:
                matches["externalId"] = self.client.search(
                    resource_type, f"externalId eq {quote_filter_value(ext)}"
                )
            except ScimError as exc:
                if exc.status not in (400, 501):  # 400/501: cannot filter on externalId
                    raise
                log.warning("scim.filter.unsupported", attribute="externalId")
                self._external_id_filter = False
        if matches["externalId"]:
            return resolve(ext, matches, names)
        for attribute, value in names.items():
            try:
                matches[attribute] = self.client.search(
                    resource_type, f"{attribute} eq {quote_filter_value(value)}"
                )
            except ScimError as exc:
                if exc.status in (400, 501) and attribute != "userName":
                    continue  # the vendor cannot filter on this attribute
                raise
        return resolve(ext, matches, names)
