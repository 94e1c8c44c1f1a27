"""The Swedish school-data standard SS 12000:2020 as a source, on httpx.

Reads school units (`/organisations?type=Skolenhet`), persons with their enrolments
(students) and duties (staff), following `pageToken` to the end; a page that fails fails the
whole read, never passing part of the data off as all of it. After a full read, later cycles
ask only for what changed (`meta.modified.after`, `/deletedEntities?after=`) and merge it into
the last full picture, which the state file keeps - without protected persons, their duties or
any personnummer. Protected identity: a `securityMarking` other than `Ingen`, on the person or
on a reference to them, means protected; a missing marking means protected too.

Talking to the API is in `ss12000_api`, turning its objects into people in `ss12000_people`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connector.config import Ss12000SourceConfig
from connector.errors import SourceError
from connector.people.model import ReadContext, School, SourceIssue, SourceRead
from connector.sources.marking import MarkingReader
from connector.sources.ss12000_api import DELETED_ENTITY_NAMES, Api, Params, ReadFailed
from connector.sources.ss12000_groups import study_groups
from connector.sources.ss12000_people import SWEDEN, Objects, PeopleBuilder, reference

log = structlog.get_logger(__name__)

NOT_PROTECTED = "Ingen"
KINDS = ("organisations", "persons", "duties", "groups", "activities")

# What a read gives: the objects to keep, the newest modification seen, the protected persons.
Picture = tuple[Objects, datetime | None, list[dict[str, Any]]]


@dataclass(slots=True)
class Snapshot:
    """The merged picture to keep for the next incremental read, and its checkpoint."""

    objects: Objects = field(default_factory=dict)
    checkpoint: str = ""
    # What the incremental read that made it was sent, as (kind, id, meta.modified): the next
    # read, overlapping it, gets them again and must not take them for changes - a protected
    # person, never kept in `objects`, included. In a daemon's memory only, never saved.
    returned: frozenset[tuple[str, str, str]] = frozenset()


class Ss12000Source:
    def __init__(
        self, config: Ss12000SourceConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self._clock = clock  # for token lifetimes; tests pass the test server's clock
        self.name = config.name
        self._people = PeopleBuilder(config)

    def read(self, context: ReadContext | None = None) -> SourceRead:
        context = context or ReadContext()
        self._invalid: list[SourceIssue] = []
        self._marking = MarkingReader([NOT_PROTECTED])
        self._changes = 0  # what an incremental read found changed or deleted
        self._returned: set[tuple[str, str, str]] = set()
        previous = context.previous.snapshot if context.previous is not None else None
        self._returned_before = previous.returned if isinstance(previous, Snapshot) else frozenset()
        snapshot, checkpoint = context.snapshot, context.checkpoint
        incremental = bool(
            self.config.incremental and not context.full and snapshot is not None and checkpoint
        )
        try:
            with Api(self.config, self._clock) as api:
                if incremental and snapshot is not None and checkpoint:
                    objects, newest, protected = self._read_changes(api, snapshot, checkpoint)
                else:
                    objects, newest, protected = self._read_all(api)
        except ReadFailed as exc:
            raise SourceError(self.name, f"{self.config.base_url}: {exc}") from None
        if incremental and self._changes == 0 and context.previous is not None:
            log.info("source.read", source=self.name, mode="incremental", changes=0)
            return context.previous  # nothing changed: the last picture stands
        if not incremental and context.only is None:
            # After a full read every person was looked at (an incremental read also holds
            # the last snapshot's, which carried the marking).
            self._marking.require_present(self.name, "securityMarking")
        result = self._people.build(objects, protected)
        if self.config.study_groups:
            self._add_study_groups(objects, result)
        result.marking_values = self._marking.other_values
        result.issues.extend(self._invalid)
        overlap = timedelta(seconds=self.config.checkpoint_overlap_seconds)
        next_checkpoint = (newest - overlap).isoformat() if newest else (checkpoint or "")
        result.snapshot = Snapshot(objects, next_checkpoint, frozenset(self._returned))
        log.info(
            "source.read",
            source=self.name,
            mode="incremental" if incremental else "full",
            persons=len(result.persons),
            school_units=len(result.schools),
            issues=len(result.issues),
        )
        return result

    def _add_study_groups(self, objects: Objects, result: SourceRead) -> None:
        """Each person's study groups (never a protected person's: their memberships and
        duties are gone from `objects`, and they carry none)."""
        units = {
            org_id: School(str(org["schoolUnitCode"]), "")
            for org_id, org in objects["organisations"].items()
            if org.get("organisationType") == "Skolenhet" and org.get("schoolUnitCode")
        }
        by_person, refused = study_groups(objects, units, datetime.now(SWEDEN).date())
        result.issues += [SourceIssue(self.name, where, why) for where, why in refused]
        result.persons = [
            replace(p, study_groups=tuple(dict.fromkeys(by_person[p.source_key])))
            if not p.protected and p.source_key in by_person
            else p
            for p in result.persons
        ]

    def _read_all(self, api: Api) -> Picture:
        objects: Objects = {kind: {} for kind in KINDS}
        newest: datetime | None = None
        for kind, params in self._queries([]).items():
            for item in api.items(f"/{kind}", params):
                newest = _later(newest, item)
                self._keep(objects, kind, item)
        return self._keep_only_unprotected(objects, newest, self._protected_ids(objects))

    def _queries(self, extra: Params) -> dict[str, Params]:
        queries = {
            "organisations": [("type", "Skolenhet"), *extra],
            "persons": [*extra],
            "duties": [*extra],
        }
        types = [("groupType", "Klass")] if self.config.classes else []
        if self.config.study_groups:
            types = [("groupType", "Klass"), ("groupType", "Undervisning")]
            queries["activities"] = [*extra]
        if types:
            queries["groups"] = [*types, *extra]
        return queries

    def _keep(self, objects: Objects, kind: str, item: dict[str, Any]) -> None:
        if isinstance(item.get("id"), str) and item["id"]:
            objects[kind][item["id"]] = item
        else:
            where = f"{DELETED_ENTITY_NAMES[kind]} (no id)"
            self._invalid.append(SourceIssue(self.name, where, "has no id; skipped"))

    def _read_changes(self, api: Api, snapshot: Objects, checkpoint: str) -> Picture:
        objects = {kind: dict(snapshot.get(kind, {})) for kind in KINDS}
        newest: datetime | None = None
        # The same kinds as a full read (class groups too, with `classes`), only what changed.
        queries = self._queries([("meta.modified.after", checkpoint)])
        for kind, params in queries.items():
            for item in api.items(f"/{kind}", params):
                newest = _later(newest, item)
                if isinstance(item.get("id"), str):
                    # The checkpoint overlaps the last read: what it saw comes again, unchanged.
                    stamp = (kind, item["id"], str((item.get("meta") or {}).get("modified")))
                    self._returned.add(stamp)
                    if objects[kind].get(item["id"]) != item and stamp not in self._returned_before:
                        self._changes += 1
                    objects[kind][item["id"]] = item
        for kind, ids in api.deleted(checkpoint, list(queries)).items():
            for obj_id in ids:
                self._changes += objects[kind].pop(obj_id, None) is not None
        # A person new to the picture (e.g. no longer protected) brings duties that did not
        # change themselves: fetch theirs. A protected person is never kept, so always looks
        # new: no lookup for them (their kind comes from duties kept while they were not).
        protected_ids = self._protected_ids(objects)
        newcomers = objects["persons"].keys() - snapshot.get("persons", {}).keys() - protected_ids
        for person_id in sorted(newcomers):
            for duty in api.items("/duties", [("person", person_id)]):
                self._keep(objects, "duties", duty)
        protected_ids |= _protected_references(objects["duties"].values())
        return self._keep_only_unprotected(objects, newest, protected_ids)

    def _protected(self, person: dict[str, Any]) -> bool:
        """Fail closed: only an explicit `Ingen` means not protected."""
        value = person.get("securityMarking")
        if value is not None and not isinstance(value, str):
            return self._marking.unreadable()
        return self._marking.protected((value,))

    def _protected_ids(self, objects: Objects) -> set[str]:
        """Persons protected by their own marking (each read once, as the tally counts them)
        or by a duty's reference to them."""
        marked = {pid for pid, person in objects["persons"].items() if self._protected(person)}
        return marked | _protected_references(objects["duties"].values())

    def _keep_only_unprotected(
        self, objects: Objects, newest: datetime | None, protected_ids: set[str]
    ) -> Picture:
        """Split off protected persons (and their duties) so they are never kept in state."""
        protected = [
            objects["persons"].pop(pid) for pid in protected_ids if pid in objects["persons"]
        ]
        duties_before = list(objects["duties"].values())
        objects["duties"] = {
            did: duty
            for did, duty in objects["duties"].items()
            if str(reference(duty, "person").get("id")) not in protected_ids
        }
        for group in objects["groups"].values():
            group["groupMemberships"] = [
                m
                for m in group.get("groupMemberships") or []
                if isinstance(m, dict)
                and str(reference(m, "person").get("id")) not in protected_ids
                and reference(m, "person").get("securityMarking", NOT_PROTECTED) == NOT_PROTECTED
            ]
        kept = objects["duties"]
        for activity in objects["activities"].values():
            # A protected teacher's duty is gone: so is its mention, even as an id.
            activity["teachers"] = [
                t
                for t in activity.get("teachers") or []
                if isinstance(t, dict) and str(reference(t, "duty").get("id")) in kept
            ]
        if self.config.join_key != "civicNo":
            for person in objects["persons"].values():
                person.pop("civicNo", None)  # not needed, so not kept
        staff_ids = {str(reference(d, "person").get("id")) for d in duties_before}
        for person in protected:
            person["_staff"] = person["id"] in staff_ids
        return objects, newest, protected


def _protected_references(duties: Iterable[dict[str, Any]]) -> set[str]:
    """Persons whom a duty's reference marks protected (a marking other than `Ingen`)."""
    found = set()
    for duty in duties:
        person = reference(duty, "person")
        if "securityMarking" in person and person["securityMarking"] != NOT_PROTECTED:
            found.add(str(person.get("id")))
    return found


def _later(newest: datetime | None, item: dict[str, Any]) -> datetime | None:
    """The server's own timestamps drive the checkpoint."""
    try:
        stamp = str(reference(item, "meta")["modified"])
        modified = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return newest
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    return modified if newest is None or modified > newest else newest
