"""The Swedish school-data standard SS 12000:2020 as a source, on httpx.

Reads school units (`/organisations?type=Skolenhet`), persons with their enrolments
(students) and duties (staff), following `pageToken` to the end; a page that fails fails the
whole read, never passing part of the data off as all of it. After a full read, later cycles
ask only for what changed (`meta.modified.after`, `/deletedEntities?after=`) and merge it into
the last full picture, which the state file keeps - without protected persons, their duties or
any personnummer. Protected identity: a `securityMarking` other than `Ingen`, on the person or
on a reference to them, means protected; a missing marking means protected too.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import structlog

from connector.config import Ss12000SourceConfig
from connector.errors import SourceError
from connector.people.emails import normalize_email
from connector.people.model import (
    Kind,
    Person,
    Placement,
    ReadContext,
    School,
    SourceIssue,
    SourceRead,
    unsafe_text,
)
from connector.sources.marking import MarkingReader

log = structlog.get_logger(__name__)

SWEDEN = ZoneInfo("Europe/Stockholm")
NOT_PROTECTED = "Ingen"
KINDS = ("organisations", "persons", "duties", "groups")
DELETED_ENTITY_NAMES = {
    "organisations": "Organisation",
    "persons": "Person",
    "duties": "Duty",
    "groups": "Group",
}


class _Failed(Exception):
    """The read cannot complete; becomes a SourceError naming the source."""


@dataclass(slots=True)
class Snapshot:
    """The merged picture to keep for the next incremental read, and its checkpoint."""

    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    checkpoint: str = ""


def _renewal_margin(lifetime: float) -> float:
    """How early to renew, so a token never expires between the check and the request:
    in proportion to its lifetime, so a short-lived token still serves most of its life."""
    return max(5.0, lifetime / 10)


class _TokenSource:
    """OAuth2 client credentials: one token, cached until shortly before it expires (a token
    living no longer than the margin serves only the request it was fetched for)."""

    def __init__(
        self,
        config: Ss12000SourceConfig,
        http: httpx.Client,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._auth = config.auth
        self._http = http
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()

    def token(self, *, renew: bool = False) -> str:
        static = self._auth.static_token()
        if static:
            return static
        with self._lock:
            if renew or self._token is None or self._clock() >= self._renew_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def _fetch(self) -> None:
        auth = self._auth
        assert auth.token_url is not None and auth.client_id is not None
        form = {
            "grant_type": "client_credentials",
            "client_id": auth.client_id,
            "client_secret": auth.secret(),
        }
        if auth.scope:
            form["scope"] = auth.scope
        try:
            response = self._http.post(auth.token_url, data=form)
        except httpx.HTTPError as exc:
            raise _Failed(f"token endpoint: {type(exc).__name__}") from None
        if response.status_code != 200:
            error = ""
            with contextlib.suppress(ValueError):
                error = str(response.json().get("error", ""))
            hint = " (wrong client id or secret?)" if error == "invalid_client" else ""
            raise _Failed(
                f"token endpoint refused the client: {response.status_code} {error}{hint}"
            )
        body = response.json()
        self._token = str(body["access_token"])
        lifetime = float(body.get("expires_in", 300))
        self._renew_at = self._clock() + lifetime - _renewal_margin(lifetime)


class Ss12000Source:
    def __init__(
        self, config: Ss12000SourceConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self._clock = clock  # for token lifetimes; tests pass the test server's clock
        self.name = config.name
        self._school_types = {t.casefold() for t in config.school_types}
        self._duty_roles = {r.casefold() for r in config.duty_roles}

    # -- HTTP ------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        config = self.config
        verify: bool | str = (
            str(config.ca_file) if (config.verify_tls and config.ca_file) else config.verify_tls
        )
        return httpx.Client(
            timeout=config.timeout_seconds, verify=verify, headers={"Accept": "application/json"}
        )

    def _get(
        self, http: httpx.Client, tokens: _TokenSource, path: str, params: list[tuple[str, str]]
    ) -> dict[str, Any]:
        url = f"{self.config.base_url}{path}"
        for attempt in (1, 2):
            try:
                response = http.get(
                    url,
                    params=params,
                    headers={"Authorization": f"Bearer {tokens.token(renew=attempt == 2)}"},
                )
            except httpx.HTTPError as exc:
                raise _Failed(f"GET {path}: {type(exc).__name__}") from None
            if response.status_code == 401 and attempt == 1:
                continue  # the token expired or was revoked: renew it once
            if response.status_code != 200:
                raise _Failed(f"GET {path}: HTTP {response.status_code}")
            try:
                body = response.json()
            except ValueError:
                raise _Failed(f"GET {path}: the answer is not JSON") from None
            if not isinstance(body, dict):
                raise _Failed(f"GET {path}: the answer is not a JSON object")
            return body
        raise _Failed(f"GET {path}: HTTP 401 after renewing the token")

    def _pages(
        self, http: httpx.Client, tokens: _TokenSource, path: str, params: list[tuple[str, str]]
    ) -> Iterator[dict[str, Any]]:
        """Every page of a listing to the end (pageToken alone, plus limit)."""
        limit = ("limit", str(self.config.page_size))
        body = self._get(http, tokens, path, [*params, limit])
        while True:
            yield body
            token = body.get("pageToken")
            if not token:
                return
            body = self._get(http, tokens, path, [("pageToken", str(token)), limit])

    def _list(
        self, http: httpx.Client, tokens: _TokenSource, path: str, params: list[tuple[str, str]]
    ) -> Iterator[dict[str, Any]]:
        """Every object of a listing, page by page."""
        for body in self._pages(http, tokens, path, params):
            data = body.get("data")
            if not isinstance(data, list):
                raise _Failed(f"GET {path}: no data list in the answer")
            yield from (item for item in data if isinstance(item, dict))

    def _deleted(
        self, http: httpx.Client, tokens: _TokenSource, checkpoint: str, kinds: list[str]
    ) -> dict[str, set[str]]:
        """Ids deleted since the checkpoint, per kind, from every page of /deletedEntities."""
        entities = [("entities", DELETED_ENTITY_NAMES[kind]) for kind in kinds]
        deleted: dict[str, set[str]] = {kind: set() for kind in kinds}
        params = [("after", checkpoint), *entities]
        for body in self._pages(http, tokens, "/deletedEntities", params):
            data = body.get("data")
            if not isinstance(data, dict):
                raise _Failed("GET /deletedEntities: no data object in the answer")
            for kind in kinds:
                deleted[kind].update(str(obj_id) for obj_id in data.get(kind) or [])
        return deleted

    # -- reading ---------------------------------------------------------------------------

    def read(self, context: ReadContext | None = None) -> SourceRead:
        context = context or ReadContext()
        self._invalid: list[SourceIssue] = []
        self._marking = MarkingReader([NOT_PROTECTED])
        incremental = bool(
            self.config.incremental
            and not context.full
            and context.snapshot is not None
            and context.checkpoint
        )
        try:
            with self._client() as http:
                tokens = _TokenSource(self.config, http, self._clock)
                if incremental:
                    assert context.snapshot is not None and context.checkpoint is not None
                    objects, newest, protected = self._read_changes(
                        http, tokens, context.snapshot, context.checkpoint
                    )
                else:
                    objects, newest, protected = self._read_all(http, tokens)
        except _Failed as exc:
            raise SourceError(self.name, f"{self.config.base_url}: {exc}") from None
        if not incremental and context.only is None:
            # After a full read every person was looked at (an incremental read also holds
            # the last snapshot's, which carried the marking).
            self._marking.require_present(self.name, "securityMarking")
        result = self._build(objects, protected)
        result.marking_values = self._marking.other_values
        result.issues.extend(self._invalid)
        overlap = timedelta(seconds=self.config.checkpoint_overlap_seconds)
        checkpoint = (newest - overlap).isoformat() if newest else (context.checkpoint or "")
        result.snapshot = Snapshot(objects, checkpoint)
        log.info(
            "source.read",
            source=self.name,
            mode="incremental" if incremental else "full",
            persons=len(result.persons),
            school_units=len(result.schools),
            issues=len(result.issues),
        )
        return result

    def _read_all(
        self, http: httpx.Client, tokens: _TokenSource
    ) -> tuple[dict[str, dict[str, dict[str, Any]]], datetime | None, list[dict[str, Any]]]:
        objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        newest: datetime | None = None
        queries = self._queries([])
        for kind, params in queries.items():
            for item in self._list(http, tokens, f"/{kind}", params):
                newest = _later(newest, item)
                self._keep(objects, kind, item)
        return self._keep_only_unprotected(objects, newest, self._protected_ids(objects))

    def _queries(self, extra: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
        queries = {
            "organisations": [("type", "Skolenhet"), *extra],
            "persons": [*extra],
            "duties": [*extra],
        }
        if self.config.classes:
            queries["groups"] = [("groupType", "Klass"), *extra]
        return queries

    def _keep(
        self, objects: dict[str, dict[str, dict[str, Any]]], kind: str, item: dict[str, Any]
    ) -> None:
        if isinstance(item.get("id"), str) and item["id"]:
            objects[kind][item["id"]] = item
        else:
            self._invalid.append(
                SourceIssue(
                    self.name, f"{DELETED_ENTITY_NAMES[kind]} (no id)", "has no id; skipped"
                )
            )

    def _read_changes(
        self,
        http: httpx.Client,
        tokens: _TokenSource,
        snapshot: dict[str, dict[str, dict[str, Any]]],
        checkpoint: str,
    ) -> tuple[dict[str, dict[str, dict[str, Any]]], datetime | None, list[dict[str, Any]]]:
        objects = {kind: dict(snapshot.get(kind, {})) for kind in KINDS}
        newest: datetime | None = None
        # The same kinds as a full read (class groups too, with `classes`), only what changed.
        queries = self._queries([("meta.modified.after", checkpoint)])
        for kind, params in queries.items():
            for item in self._list(http, tokens, f"/{kind}", params):
                newest = _later(newest, item)
                if isinstance(item.get("id"), str):
                    objects[kind][item["id"]] = item
        for kind, ids in self._deleted(http, tokens, checkpoint, list(queries)).items():
            for obj_id in ids:
                objects[kind].pop(obj_id, None)
        # A person new to the picture (e.g. no longer protected) brings duties that did not
        # change themselves: fetch theirs. A protected person is never kept, so always looks
        # new: no lookup for them (their kind comes from duties kept while they were not).
        protected_ids = self._protected_ids(objects)
        newcomers = objects["persons"].keys() - snapshot.get("persons", {}).keys() - protected_ids
        for person_id in sorted(newcomers):
            for duty in self._list(http, tokens, "/duties", [("person", person_id)]):
                self._keep(objects, "duties", duty)
        protected_ids |= _protected_references(objects["duties"].values())
        return self._keep_only_unprotected(objects, newest, protected_ids)

    def _protected(self, person: dict[str, Any]) -> bool:
        """Fail closed: only an explicit `Ingen` means not protected."""
        value = person.get("securityMarking")
        if value is not None and not isinstance(value, str):
            return self._marking.unreadable()
        return self._marking.protected((value,))

    def _protected_ids(self, objects: dict[str, dict[str, dict[str, Any]]]) -> set[str]:
        """Persons protected by their own marking (each read once, as the tally counts them)
        or by a duty's reference to them."""
        marked = {pid for pid, person in objects["persons"].items() if self._protected(person)}
        return marked | _protected_references(objects["duties"].values())

    def _keep_only_unprotected(
        self,
        objects: dict[str, dict[str, dict[str, Any]]],
        newest: datetime | None,
        protected_ids: set[str],
    ) -> tuple[dict[str, dict[str, dict[str, Any]]], datetime | None, list[dict[str, Any]]]:
        """Split off protected persons (and their duties) so they are never kept in state."""
        protected = [
            objects["persons"].pop(pid) for pid in protected_ids if pid in objects["persons"]
        ]
        duties_before = list(objects["duties"].values())
        objects["duties"] = {
            did: duty
            for did, duty in objects["duties"].items()
            if str((duty.get("person") or {}).get("id")) not in protected_ids
        }
        for group in objects["groups"].values():
            group["groupMemberships"] = [
                m
                for m in group.get("groupMemberships") or []
                if isinstance(m, dict)
                and str((m.get("person") or {}).get("id")) not in protected_ids
                and (m.get("person") or {}).get("securityMarking", NOT_PROTECTED) == NOT_PROTECTED
            ]
        if self.config.join_key != "civicNo":
            for person in objects["persons"].values():
                person.pop("civicNo", None)  # not needed, so not kept
        staff_ids = {str((d.get("person") or {}).get("id")) for d in duties_before}
        for person in protected:
            person["_staff"] = person["id"] in staff_ids
        return objects, newest, protected

    # -- the neutral model -----------------------------------------------------------------

    def _build(
        self, objects: dict[str, dict[str, dict[str, Any]]], protected: list[dict[str, Any]]
    ) -> SourceRead:
        result = SourceRead(source=self.name)
        today = datetime.now(SWEDEN).date()
        units: dict[str, School] = {}
        for org_id, org in objects["organisations"].items():
            code = str(org.get("schoolUnitCode") or "")
            if org.get("organisationType") != "Skolenhet" or not code:
                continue
            types = tuple(str(t) for t in org.get("schoolTypes") or [])
            name = str(org.get("displayName") or code)
            reason = unsafe_text(name)
            if reason is not None:  # its people are still there: only the name is not sent
                where = f"{DELETED_ENTITY_NAMES['organisations']} {org_id}"
                why = f"displayName {reason}; the school unit is named by its code"
                result.issues.append(SourceIssue(self.name, where, why))
                name = code
            units[org_id] = School(code=code, name=name, school_types=types)
        result.schools = list(units.values())

        classes: dict[tuple[str, str], str] = {}  # (person id, school unit code) -> class
        for group in objects.get("groups", {}).values():
            unit = units.get(str((group.get("organisation") or {}).get("id")))
            if unit is None or not group.get("displayName"):
                continue
            for member in group.get("groupMemberships") or []:
                if _current(
                    {"startDate": member.get("startDate"), "endDate": member.get("endDate")}, today
                ):
                    classes[(str((member.get("person") or {}).get("id")), unit.code)] = str(
                        group["displayName"]
                    )

        duties_by_person: dict[str, list[Placement]] = {}
        for duty in objects["duties"].values():
            role = str(duty.get("dutyRole") or "")
            unit = units.get(str((duty.get("dutyAt") or {}).get("id")))
            if unit is None or not _current(duty, today):
                continue
            if self._duty_roles and role.casefold() not in self._duty_roles:
                continue
            person_id = str((duty.get("person") or {}).get("id"))
            duties_by_person.setdefault(person_id, []).append(
                Placement(unit.code, role=role or None)
            )

        for person in protected:
            result.rows_read += 1
            # Only what is needed to find an account made before the marking: key and kind.
            kind = Kind.STAFF if person.get("_staff") else Kind.STUDENT
            result.persons.append(Person(str(person["id"]), kind, "", "", None, None, True))
        for person_id, person in objects["persons"].items():
            result.rows_read += 1
            try:
                built = self._person(
                    person_id, person, units, duties_by_person.get(person_id, []), today, classes
                )
            except ValueError as exc:
                result.issues.append(SourceIssue(self.name, f"Person {person_id}", str(exc)))
                result.unreadable_keys.add(person_id)
                continue
            if built is not None:
                result.persons.append(built)
        return result

    def _person(
        self,
        person_id: str,
        person: dict[str, Any],
        units: dict[str, School],
        duties: list[Placement],
        today: date,
        classes: dict[tuple[str, str], str],
    ) -> Person | None:
        enrolments = []
        for enrolment in person.get("enrolments") or []:
            if (
                not isinstance(enrolment, dict)
                or enrolment.get("cancelled")
                or not _current(enrolment, today)
            ):
                continue
            unit = units.get(str((enrolment.get("enroledAt") or {}).get("id")))
            school_type = str(enrolment.get("schoolType") or "")
            if unit is None or (
                self._school_types and school_type.casefold() not in self._school_types
            ):
                continue
            year = enrolment.get("schoolYear")
            enrolments.append(
                Placement(
                    unit.code,
                    school_type=school_type or None,
                    school_year=None if year is None else str(year),
                    class_name=classes.get((person_id, unit.code)),
                )
            )
        kind = Kind.STAFF if duties else Kind.STUDENT
        placements = duties or enrolments
        if not placements:
            return None  # no current enrolment or duty in scope: not (or no longer) here
        given, family = (
            str(person.get("givenName") or "").strip(),
            str(person.get("familyName") or "").strip(),
        )
        if not given or not family:
            raise ValueError("givenName or familyName is missing")
        email_type = (
            self.config.staff_email_type if kind is Kind.STAFF else self.config.student_email_type
        )
        email = next(
            (
                str(e.get("value"))
                for e in person.get("emails") or []
                if isinstance(e, dict) and e.get("type") == email_type
            ),
            None,
        )
        eppns = person.get("eduPersonPrincipalNames") or []
        username = str(eppns[0]) if self.config.username == "eppn" and eppns else None
        _refuse_unsafe(given, family, email, username, placements)
        if email is not None:
            try:
                email = normalize_email(email)
            except ValueError:
                raise ValueError(f"the {email_type} e-mail address is not valid") from None
        civic = person.get("civicNo") if isinstance(person.get("civicNo"), dict) else {}
        return Person(
            source_key=person_id,
            kind=kind,
            given_name=given,
            family_name=family,
            email=email,
            username=username,
            protected=False,
            placements=tuple(dict.fromkeys(placements)),
            join_key=str(civic.get("value"))
            if self.config.join_key == "civicNo" and civic.get("value")
            else None,
        )


def _protected_references(duties: Iterable[dict[str, Any]]) -> set[str]:
    """Persons whom a duty's reference marks protected (a marking other than `Ingen`)."""
    found = set()
    for duty in duties:
        reference = duty.get("person") if isinstance(duty.get("person"), dict) else {}
        if "securityMarking" in reference and reference["securityMarking"] != NOT_PROTECTED:
            found.add(str(reference.get("id")))
    return found


def _refuse_unsafe(
    given: str,
    family: str,
    email: str | None,
    username: str | None,
    placements: list[Placement],
) -> None:
    """The text-safety rule for what is sent of a person: a value that fails it is reported
    (by name, never by value) and the person held."""
    values = [("givenName", given), ("familyName", family), ("email", email)]
    values.append(("eduPersonPrincipalName", username))
    values += [("class name", p.class_name) for p in placements]
    values += [("dutyRole", p.role) for p in placements]
    for name, value in values:
        reason = unsafe_text(value) if value else None
        if reason is not None:
            raise ValueError(f"{name} {reason}")


def _current(item: dict[str, Any], today: date) -> bool:
    """Inclusive of both dates, by the Swedish calendar; a missing end date is open."""
    try:
        start = date.fromisoformat(str(item["startDate"])) if item.get("startDate") else None
        end = date.fromisoformat(str(item["endDate"])) if item.get("endDate") else None
    except ValueError:
        return False
    return (start is None or start <= today) and (end is None or today <= end)


def _later(newest: datetime | None, item: dict[str, Any]) -> datetime | None:
    """The server's own timestamps drive the checkpoint."""
    meta = item.get("meta") if isinstance(item.get("meta"), dict) else {}
    try:
        modified = datetime.fromisoformat(str(meta["modified"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return newest
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    return modified if newest is None or modified > newest else newest
