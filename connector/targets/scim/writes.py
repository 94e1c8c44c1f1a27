"""The writes of one operation each: users, groups and memberships, one request or a few;
changes of one vendor object never overlap."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from connector.planning.objects import (
    SCRUBBED,
    VALUE_PATHS,
    Known,
    account_names,
    value_key,
    values_of,
)
from connector.planning.plan import Operation
from connector.targets.scim.client import ScimClient, ScimError, VendorError
from connector.targets.scim.lookup import LookupMixin
from connector.targets.scim.outcome import Outcome, ref, version_of
from connector.targets.scim.resources import (
    attributes_patch,
    flatten,
    group_payload,
    members_patch,
    replaced_resource,
    same_value,
    user_payload,
)

# A read-modify-replace of a group's members that meets 412 (changed meanwhile) reads again
# this many times in all before the change fails for this cycle.
log = structlog.get_logger(__name__)

REPLACE_ATTEMPTS = 3


def keeping_theirs(existing: dict[str, Any], attributes: dict[str, Any]) -> dict[str, Any]:
    """Owned multi-valued attributes (roles, entitlements) as the vendor holds them, with ours
    added: linking or re-reading an account never takes away a value someone else granted."""
    merged = {}
    for path in VALUE_PATHS:
        if path in attributes:
            values = values_of(existing, path)
            present = {value_key(v) for v in values}
            ours = [v for v in values_of(attributes, path) if value_key(v) not in present]
            merged[path] = values + ours
    return merged


class WritesMixin(LookupMixin):
    """The Applier's handlers."""

    client: ScimClient
    known: Known
    user_ids: dict[str, str]
    group_ids: dict[str, str]
    prior_intents: set[str]
    create_only: frozenset[str]
    _lock: threading.Lock
    _writers: dict[tuple[str, str], threading.Lock]

    @contextmanager
    def _one_writer(self, resource_type: str, vendor_id: str) -> Iterator[None]:
        """Hold the object's own lock: concurrent writes to one group (a read-modify-replace
        of its members above all) would overwrite each other."""
        with self._lock:
            lock = self._writers.setdefault((resource_type, vendor_id), threading.Lock())
        with lock:
            yield

    def _create_user(self, op: Operation, *, sent_before: bool = False) -> Outcome:
        attributes = op.attributes
        names = account_names(attributes)
        return self._create(op, "Users", user_payload(attributes), names, sent_before=sent_before)

    def _create(
        self,
        op: Operation,
        resource_type: str,
        payload: dict[str, Any],
        names: dict[str, str],
        *,
        sent_before: bool = False,
    ) -> Outcome:
        """Link what the vendor already has; else create, and if the answer is lost (or 409),
        look again rather than send it twice. `sent_before`: a create of it may already have
        reached the vendor (a bulk request whose answer was lost), so look at the vendor itself."""
        attributes = op.attributes
        existing = self._find_existing(resource_type, op.target, names, fresh=sent_before)
        # Ours if an interrupted run of ours sent it (it carries our opaque externalId).
        ours = sent_before or op.target in self.prior_intents
        if existing is None:
            try:
                created = self.client.create(resource_type, payload)
                return Outcome(
                    op, "created", created["id"], attributes, version=version_of(created)
                )
            except ScimError as exc:
                if exc.status is not None and exc.status != 409 and exc.status < 500:
                    raise
                # Our request may have been carried out (a lost answer), or someone else's: look
                # at the vendor itself (this cycle's listing cannot know).
                existing = self._find_existing(resource_type, op.target, names, fresh=True)
                if existing is None:
                    raise
                ours = True
        return self._link(op, resource_type, existing, ours)

    def _link(
        self, op: Operation, resource_type: str, existing: dict[str, Any], ours: bool
    ) -> Outcome:
        """Take over an account the vendor already holds, bringing it in line: "recovered" if
        it carries our externalId and is ours by how it was found (an earlier create of ours
        whose answer was lost), else "linked" (an account made by someone else)."""
        ours = ours and existing.get("externalId") == op.target
        version = self._bring_in_line(resource_type, existing, op.attributes)
        return Outcome(
            op, "recovered" if ours else "linked", existing["id"], op.attributes, version=version
        )

    def _bring_in_line(
        self,
        resource_type: str,
        existing: dict[str, Any],
        attributes: dict[str, Any],
    ) -> str | None:
        """Change only the managed attributes that differ from `existing`; the new version."""
        attributes = {**attributes, **keeping_theirs(existing, attributes)}
        current = flatten(existing, frozenset(attributes))
        changes = {p: v for p, v in attributes.items() if not same_value(p, v, current.get(p))}
        if resource_type == "Users":
            # An account's create-only values (`on: create`) are the vendor's once it has them.
            changes = {
                p: v for p, v in changes.items() if p not in self.create_only or not current.get(p)
            }
        if not changes:
            return version_of(existing)
        return self._send_changes(
            resource_type, existing["id"], changes, existing, version_of(existing)
        )

    def _send_changes(
        self,
        resource_type: str,
        vendor_id: str,
        changes: dict[str, Any],
        current: dict[str, Any] | None = None,
        version: str | None = None,
    ) -> str | None:
        """PATCH the changes (If-Match where the vendor does ETags); the new version."""
        features = self.client.features()
        if_match = version if features.etag else None
        with self._one_writer(resource_type, vendor_id):
            if features.patch:
                payload = attributes_patch(resource_type, changes)
                return self.client.patch(resource_type, vendor_id, payload, if_match=if_match)
            # No PATCH: read, change only our attributes, and put back everything else as it was.
            if current is None:
                current = self.client.get(resource_type, vendor_id)
                if_match = version_of(current) if features.etag else None
            replaced = self.client.replace(
                resource_type, vendor_id, replaced_resource(current, changes), if_match=if_match
            )
        return version_of(replaced)

    def _update_known_user(
        self, op: Operation, changes: dict[str, Any], wanted: dict[str, Any]
    ) -> str | None:
        """Send `changes` at the version we last saw. If the account changed at the vendor since
        (412), read it again and send what now differs from `wanted`, once."""
        assert op.vendor_id is not None
        seen = self.known.users[op.target]
        try:
            return self._send_changes("Users", op.vendor_id, changes, version=seen.version)
        except ScimError as exc:
            if exc.status != 412:
                raise
        return self._reread_and_replan(op, wanted)

    def _reread_and_replan(self, op: Operation, wanted: dict[str, Any]) -> str | None:
        """The account changed at the vendor since we last saw it: read it and send what now
        differs from `wanted`; the new version."""
        assert op.vendor_id is not None
        log.info("apply.replanned", op=op.kind, ref=ref(op.target), why="changed at the vendor")
        current = self.client.get("Users", op.vendor_id)
        return self._bring_in_line("Users", current, wanted)

    def _update_user(self, op: Operation) -> Outcome:
        outcome = self._updated(op, None)
        assert outcome.applied is not None
        outcome.version = self._update_known_user(op, op.attributes, outcome.applied)
        return outcome

    def _updated(self, op: Operation, version: str | None) -> Outcome:
        merged = {**self.known.users[op.target].attributes, **op.attributes}
        wanted = {k: v for k, v in merged.items() if v is not None}
        return Outcome(op, "updated", op.vendor_id, wanted, version=version)

    def _rekey_user(self, op: Operation) -> Outcome:
        """Move the gone person's account to the new key: PATCH its externalId (and whatever
        else differs: active, the new person's attributes) at the version we last saw."""
        assert op.vendor_id is not None
        moving = self.known.users[op.previous]
        merged = {**moving.attributes, **op.attributes}
        wanted = {k: v for k, v in merged.items() if v is not None}
        version = moving.version
        if op.attributes:
            try:
                version = self._send_changes("Users", op.vendor_id, op.attributes, version=version)
            except ScimError as exc:
                if exc.status != 412:
                    raise
                log.info(
                    "apply.replanned", op=op.kind, ref=ref(op.target), why="changed at the vendor"
                )
                current = self.client.get("Users", op.vendor_id)
                version = self._bring_in_line("Users", current, wanted)
        return Outcome(op, "rekeyed", op.vendor_id, wanted, version=version)

    def _deactivate_user(self, op: Operation) -> Outcome:
        version = self._update_known_user(op, {"active": False}, {"active": False})
        return self._deactivated(op, version)

    def _deactivated(self, op: Operation, version: str | None) -> Outcome:
        wanted = {**self.known.users[op.target].attributes, "active": False}
        if op.reason == "protected":
            # Keep only what is needed to recognise the account again: no name, no address.
            wanted = dict(SCRUBBED)
        return Outcome(op, "deactivated", op.vendor_id, wanted, version=version)

    def _delete_user(self, op: Operation) -> Outcome:
        assert op.vendor_id is not None
        self._delete("Users", op.vendor_id)
        return Outcome(op, "deleted", op.vendor_id)

    def _delete_group(self, op: Operation) -> Outcome:
        assert op.vendor_id is not None
        self._delete("Groups", op.vendor_id)
        return Outcome(op, "deleted", op.vendor_id)

    def _delete(self, resource_type: str, vendor_id: str) -> None:
        try:
            with self._one_writer(resource_type, vendor_id):
                self.client.delete(resource_type, vendor_id)
        except ScimError as exc:
            if exc.status != 404 or isinstance(exc, VendorError):  # already gone is what we wanted
                raise

    def _create_group(self, op: Operation) -> Outcome:
        names = {"displayName": str(op.attributes["displayName"])}
        return self._create(op, "Groups", group_payload(op.attributes), names)

    def _update_group(self, op: Operation) -> Outcome:
        assert op.vendor_id is not None
        self._send_changes("Groups", op.vendor_id, op.attributes)
        applied = {**self.known.groups[op.target].attributes, **op.attributes}
        return Outcome(
            op, "updated", op.vendor_id, {k: v for k, v in applied.items() if v is not None}
        )

    def _group_id(self, op: Operation) -> str:
        group_id = self.group_ids.get(op.target)
        if group_id is None:
            raise ScimError(
                "PATCH", "/Groups/{id}", None, "the group could not be created or linked"
            )
        return group_id

    def _linked_members(self, op: Operation) -> tuple[str, ...]:
        """The members that have a vendor id. A user whose create failed this cycle is left
        out of an add (the next cycle adds them)."""
        return tuple(ext for ext in op.members if ext in self.user_ids)

    def _members_outcome(self, op: Operation, group_id: str, linked: tuple[str, ...]) -> Outcome:
        if op.kind == "add_members":
            return Outcome(op, "added", group_id, members=linked)
        # Members whose user link is gone cannot be addressed; their record is dropped too.
        return Outcome(op, "removed", group_id, members=op.members)

    def _add_members(self, op: Operation) -> Outcome:
        group_id = self._group_id(op)
        ready = self._linked_members(op)
        if ready:
            self._change_members(group_id, add=[self.user_ids[ext] for ext in ready])
        return self._members_outcome(op, group_id, ready)

    def _remove_members(self, op: Operation) -> Outcome:
        group_id = self._group_id(op)
        known = self._linked_members(op)
        if known:
            self._change_members(group_id, remove=[self.user_ids[ext] for ext in known])
        return self._members_outcome(op, group_id, known)

    def _change_members(
        self, group_id: str, *, add: list[str] | None = None, remove: list[str] | None = None
    ) -> None:
        with self._one_writer("Groups", group_id):
            if self.client.features().patch:
                payload = members_patch(add=add or [], remove=remove or [])
                self.client.patch("Groups", group_id, payload)
            else:
                self._replace_members(group_id, add or [], remove or [])

    def _replace_members(self, group_id: str, add: list[str], remove: list[str]) -> None:
        """No PATCH: read the group, change only these members, put back everything else -
        at the version read (If-Match, read again on 412) - and see that it took."""
        etag = self.client.features().etag
        for attempt in range(1, REPLACE_ATTEMPTS + 1):
            current = self.client.get("Groups", group_id)
            gone = set(remove)
            members = [
                m
                for m in current.get("members") or []
                if isinstance(m, dict) and m.get("value") not in gone
            ]
            present = {m.get("value") for m in members}
            members += [{"value": vendor_id} for vendor_id in add if vendor_id not in present]
            try:
                replaced = self.client.replace(
                    "Groups",
                    group_id,
                    replaced_resource(current, {"members": members}),
                    if_match=version_of(current) if etag else None,
                )
            except ScimError as exc:
                if exc.status != 412 or attempt == REPLACE_ATTEMPTS:
                    raise
                continue  # changed since we read it: read again
            if "members" not in replaced:  # some vendors leave members out of the answer
                replaced = self.client.get("Groups", group_id)
            values = {m.get("value") for m in replaced.get("members") or [] if isinstance(m, dict)}
            if not set(add) <= values or values & gone:
                raise ScimError(
                    "PUT",
                    "/Groups/{id}",
                    200,
                    "the group the vendor answered with does not hold the members sent",
                )
            return
