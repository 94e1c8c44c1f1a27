"""A fake SS 12000:2020 server (API v2.1) on loopback, for the tests.

It serves, in memory and from a background thread (standard library only):

- ``POST {root}/token``: OAuth 2.0 client credentials (RFC 6749 §4.4; the client may
  authenticate with form fields or HTTP Basic), plus an optional static bearer token;
- ``GET {base}/organisations``, ``/persons``, ``/duties``, ``/groups``, ``/activities`` and
  ``/deletedEntities``
  with the spec's query parameters, opaque and signed ``pageToken`` paging, change tracking by
  ``meta.*`` filters, and ``expand`` / ``expandReferenceNames``;
- ``GET {base}/<those five>/{id}`` and ``POST {base}/<those five>/lookup``.

``{base}`` is ``{root}/v2.0`` by default (the spec's server URL ends in ``/v2.0``). Response
bodies follow the spec's schemas; ``tests/integration/test_ss12000_fake.py`` validates every body
against the OpenAPI document so this fake cannot drift from the standard.

The test-side API: add / change / delete data (``add_school_unit``, ``add_person``, ``update``,
``delete``, ...), token settings (``token_lifetime``, ``static_token``, ``expire_all_tokens``),
a request log (``requests``, ``clear_requests``), fault switches (``fail``, ``clear_faults``) and
a clock (``now``, ``advance_clock``, ``clock_step_per_request``). Objects are kept in the spec's JSON shape (camelCase keys).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import json
import math
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

# --- Code lists, copied from the spec (the tests check them against the YAML) -----------------

ORGANISATION_TYPES = (
    "Huvudman",
    "Verksamhetsområde",
    "Förvaltning",
    "Rektorsområde",
    "Skola",
    "Skolenhet",
    "Varumärke",
    "Bolag",
    "Övrigt",
)
SCHOOL_TYPES = (
    "FS",
    "FKLASS",
    "FTH",
    "OPPFTH",
    "GR",
    "GRS",
    "TR",
    "SP",
    "SAM",
    "GY",
    "GYS",
    "VUX",
    "VUXSFI",
    "VUXGR",
    "VUXGY",
    "VUXSARGR",
    "VUXSARTR",
    "VUXSARGY",
    "SFI",
    "SARVUX",
    "SARVUXGR",
    "SARVUXGY",
    "KU",
    "YH",
    "FHS",
    "STF",
    "KKU",
    "HS",
    "ABU",
    "AU",
)
GROUP_TYPES = (
    "Undervisning",
    "Klass",
    "Mentor",
    "Provgrupp",
    "Schema",
    "Avdelning",
    "Personalgrupp",
    "Övrigt",
)
DUTY_ROLES = (
    "Rektor",
    "Lärare",
    "Förskollärare",
    "Barnskötare",
    "Bibliotekarie",
    "Lärarassistent",
    "Fritidspedagog",
    "Annan personal",
    "Studie- och yrkesvägledare",
    "Förstelärare",
    "Kurator",
    "Skolsköterska",
    "Skolläkare",
    "Skolpsykolog",
    "Speciallärare/specialpedagog",
    "Skoladministratör",
    "Övrig arbetsledning",
    "Övrig pedagogisk personal",
    "Förskolechef",
)
SECURITY_MARKINGS = ("Ingen", "Sekretessmarkering", "Skyddad folkbokföring")
EMAIL_TYPES = ("Privat", "Skola elev", "Skola personal", "Arbete övrigt")
#: ``EndPointsEnum`` (the ``entities`` parameter of /deletedEntities) -> key in
#: ``DeletedEntities.data``. Note the spec's own spelling ``activitites``.
DELETED_ENTITY_KEYS = {
    "Absence": "absences",
    "AttendanceEvent": "attendanceEvents",
    "Attendance": "attendances",
    "Grade": "grades",
    "CalendarEvent": "calendarEvents",
    "AttendanceSchedule": "attendanceSchedules",
    "Resource": "resources",
    "Room": "rooms",
    "Activity": "activitites",
    "Duty": "duties",
    "Placement": "placements",
    "StudyPlan": "studyPlans",
    "Programme": "programmes",
    "Syllabus": "syllabuses",
    "SchoolUnitOffering": "schoolUnitOfferings",
    "Group": "groups",
    "Person": "persons",
    "Organisation": "organisations",
}
PERSON_EXPAND = ("duties", "responsibleFor", "placements", "ownedPlacements", "groupMemberships")
DUTY_EXPAND = ("person",)
GROUP_EXPAND = ("assignmentRoles",)
ACTIVITY_EXPAND = ("groups", "teachers", "syllabus")
ACTIVITY_TYPES = ("Undervisning", "Elevaktivitet", "Provaktivitet", "Läraraktivitet", "Övrigt")
RELATIONSHIP_TYPES = (
    "enrolment",
    "duty",
    "placement.child",
    "placement.owner",
    "responsibleFor.enrolment",
    "responsibleFor.placement",
    "groupMembership",
)

#: The collections this fake holds, and their entity type names (``EndPointsEnum``).
KINDS = ("organisations", "persons", "duties", "groups", "activities")
ENTITY_TYPES = {
    "organisations": "Organisation",
    "persons": "Person",
    "duties": "Duty",
    "groups": "Group",
    "activities": "Activity",
}
#: A collection -> its key in ``DeletedEntities.data`` (activities: the spec's ``activitites``).
DELETED_KEY_OF_KIND = {kind: DELETED_ENTITY_KEYS[ENTITY_TYPES[kind]] for kind in KINDS}

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


class BadRequest(Exception):
    """Turns into a 400 with the spec's ``Error`` body."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 date-time with an offset (``Z`` or ``±hh:mm``); anything else is refused."""
    match = _DATETIME_RE.match(value)
    if not match:
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    day, clock, fraction, offset = match.groups()
    fraction = ((fraction or "") + "000000")[:6]
    offset = "+00:00" if offset in ("Z", "z") else offset
    return datetime.fromisoformat(f"{day}T{clock}.{fraction}{offset}")


def _parse_stored(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _utc_key(value: str | None) -> str:
    if not value:
        return ""
    return _parse_stored(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _as_date(value: date | str | None) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


def _ref_id(value: Mapping[str, Any] | str) -> str:
    return str(value["id"]) if isinstance(value, Mapping) else str(value)


def _drop_none(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if value is not None}


def enrolment(
    school_unit: Mapping[str, Any] | str,
    school_type: str = "GR",
    school_year: int | None = None,
    *,
    start_date: date | str = "2024-08-15",
    end_date: date | str | None = None,
    cancelled: bool | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An ``Enrolment`` (``enroledAt`` references the school unit by id)."""
    return _drop_none(
        {
            "enroledAt": {"id": _ref_id(school_unit)},
            "schoolType": school_type,
            "schoolYear": school_year,
            "startDate": _as_date(start_date),
            "endDate": _as_date(end_date),
            "cancelled": cancelled,
            **extra,
        }
    )


def membership(
    person: Mapping[str, Any] | str,
    *,
    start_date: date | str | None = None,
    end_date: date | str | None = None,
) -> dict[str, Any]:
    """A ``GroupMembership``."""
    return _drop_none(
        {
            "person": {"id": _ref_id(person)},
            "startDate": _as_date(start_date),
            "endDate": _as_date(end_date),
        }
    )


def duty_assignment(
    duty: Mapping[str, Any] | str,
    *,
    start_date: date | str | None = None,
    end_date: date | str | None = None,
    grader: bool | None = None,
) -> dict[str, Any]:
    """A ``DutyAssignment``: a teacher (by their duty) of an activity."""
    return _drop_none(
        {
            "duty": {"id": _ref_id(duty)},
            "startDate": _as_date(start_date),
            "endDate": _as_date(end_date),
            "grader": grader,
        }
    )


def assignment_role(
    group: Mapping[str, Any] | str,
    assignment_role_type: str = "Mentor",
    *,
    start_date: date | str | None = None,
    end_date: date | str | None = None,
) -> dict[str, Any]:
    """An entry of ``Duty.assignmentRole`` (a staff member's role in a group)."""
    return _drop_none(
        {
            "group": {"id": _ref_id(group)},
            "assignmentRoleType": assignment_role_type,
            "startDate": _as_date(start_date),
            "endDate": _as_date(end_date),
        }
    )


# --- The request log and fault switches ----------------------------------------------------


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the server answered it.

    ``path`` is relative to the API base path (``/persons``, ``/persons/<id>``); the token
    endpoint is logged as ``/token``. ``query`` maps each parameter to all its values (repeated
    parameters are how the spec sends arrays). ``status`` is None when a fault dropped the
    connection without an answer.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    status: int | None
    raw_path: str
    bearer: str | None
    at: float

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    @property
    def is_incremental(self) -> bool:
        return "meta.modified.after" in self.query

    @property
    def is_continuation(self) -> bool:
        return "pageToken" in self.query


@dataclass
class Fault:
    """A switch that makes matching requests fail (see ``SS12000Server.fail``)."""

    endpoint: str
    status: int | None = 500
    page: int | None = None
    times: int | None = None
    delay: float = 0.0
    disconnect: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    method: str | None = None
    hits: int = 0

    def matches(self, method: str, endpoint: str, page: int | None) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        if self.endpoint not in ("*", endpoint):
            return False
        return self.page is None or self.page == page


# --- Query parameters -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Param:
    name: str
    kind: str  # str | uuid | date | datetime | int | bool | enum
    array: bool = False
    enum: tuple[str, ...] = ()


_META_PARAMS = (
    _Param("meta.created.before", "datetime"),
    _Param("meta.created.after", "datetime"),
    _Param("meta.modified.before", "datetime"),
    _Param("meta.modified.after", "datetime"),
)
_DATE_PARAMS = (
    _Param("startDate.onOrBefore", "date"),
    _Param("startDate.onOrAfter", "date"),
    _Param("endDate.onOrBefore", "date"),
    _Param("endDate.onOrAfter", "date"),
)
_REF_NAMES = _Param("expandReferenceNames", "bool")

LIST_PARAMS: dict[str, tuple[_Param, ...]] = {
    "organisations": (
        _Param("parent", "uuid", array=True),
        _Param("schoolUnitCode", "str", array=True),
        _Param("organisationCode", "str", array=True),
        _Param("municipalityCode", "str"),
        _Param("type", "enum", array=True, enum=ORGANISATION_TYPES),
        _Param("schoolTypes", "enum", array=True, enum=SCHOOL_TYPES),
        *_DATE_PARAMS,
        *_META_PARAMS,
        _REF_NAMES,
        _Param("sortkey", "enum", enum=("ModifiedDesc", "DisplayNameAsc")),
    ),
    "persons": (
        _Param("nameContains", "str", array=True),
        _Param("civicNo", "str"),
        _Param("eduPersonPrincipalName", "str"),
        _Param("identifier.value", "str"),
        _Param("identifier.context", "str"),
        _Param("relationship.entity.type", "enum", enum=RELATIONSHIP_TYPES),
        _Param("relationship.organisation", "uuid"),
        _Param("relationship.startDate.onOrBefore", "date"),
        _Param("relationship.startDate.onOrAfter", "date"),
        _Param("relationship.endDate.onOrBefore", "date"),
        _Param("relationship.endDate.onOrAfter", "date"),
        *_META_PARAMS,
        _Param("expand", "enum", array=True, enum=PERSON_EXPAND),
        _REF_NAMES,
        _Param(
            "sortkey",
            "enum",
            enum=(
                "DisplayNameAsc",
                "GivenNameDesc",
                "GivenNameAsc",
                "FamilyNameDesc",
                "FamilyNameAsc",
                "CivicNoAsc",
                "CivicNoDesc",
                "ModifiedDesc",
            ),
        ),
    ),
    "duties": (
        _Param("organisation", "uuid"),
        _Param("dutyRole", "enum", enum=DUTY_ROLES),
        _Param("person", "uuid"),
        *_DATE_PARAMS,
        *_META_PARAMS,
        _Param("expand", "enum", array=True, enum=DUTY_EXPAND),
        _REF_NAMES,
        _Param("sortkey", "enum", enum=("StartDateDesc", "StartDateAsc", "ModifiedDesc")),
    ),
    "groups": (
        _Param("groupType", "enum", array=True, enum=GROUP_TYPES),
        _Param("schoolTypes", "enum", array=True, enum=SCHOOL_TYPES),
        _Param("organisation", "uuid", array=True),
        *_DATE_PARAMS,
        *_META_PARAMS,
        _Param("expand", "enum", array=True, enum=GROUP_EXPAND),
        _REF_NAMES,
        _Param(
            "sortkey",
            "enum",
            enum=(
                "ModifiedDesc",
                "DisplayNameAsc",
                "StartDateAsc",
                "StartDateDesc",
                "EndDateAsc",
                "EndDateDesc",
            ),
        ),
    ),
    "activities": (
        _Param("member", "uuid"),
        _Param("teacher", "uuid"),
        _Param("organisation", "uuid"),
        _Param("group", "uuid"),
        *_DATE_PARAMS,
        *_META_PARAMS,
        _Param("expand", "enum", array=True, enum=ACTIVITY_EXPAND),
        _REF_NAMES,
        _Param("sortkey", "enum", enum=("ModifiedDesc", "DisplayNameAsc")),
    ),
    "deletedEntities": (
        _Param("after", "datetime"),
        _Param("entities", "enum", array=True, enum=tuple(DELETED_ENTITY_KEYS)),
    ),
}
#: ``expand`` values of the single-object and lookup endpoints.
ITEM_PARAMS: dict[str, tuple[_Param, ...]] = {
    "organisations": (_REF_NAMES,),
    "persons": (_Param("expand", "enum", array=True, enum=PERSON_EXPAND), _REF_NAMES),
    "duties": (_Param("expand", "enum", array=True, enum=DUTY_EXPAND), _REF_NAMES),
    "groups": (_Param("expand", "enum", array=True, enum=GROUP_EXPAND), _REF_NAMES),
    "activities": (_Param("expand", "enum", array=True, enum=ACTIVITY_EXPAND), _REF_NAMES),
}


def _parse_value(param: _Param, raw: str) -> Any:
    kind = param.kind
    if kind == "str":
        return raw
    if kind == "uuid":
        if not _UUID_RE.match(raw):
            raise BadRequest("invalid_parameter", f"{param.name}: not a uuid: {raw!r}")
        return raw.lower()
    if kind == "date":
        try:
            if not _DATE_RE.match(raw):
                raise ValueError(raw)
            return date.fromisoformat(raw)
        except ValueError:
            raise BadRequest(
                "invalid_parameter", f"{param.name}: not an RFC 3339 date (YYYY-MM-DD): {raw!r}"
            ) from None
    if kind == "datetime":
        try:
            return parse_rfc3339(raw)
        except ValueError:
            raise BadRequest(
                "invalid_parameter",
                f"{param.name}: not an RFC 3339 date-time with offset: {raw!r}",
            ) from None
    if kind == "bool":
        if raw.lower() not in ("true", "false"):
            raise BadRequest("invalid_parameter", f"{param.name}: not a boolean: {raw!r}")
        return raw.lower() == "true"
    if kind == "enum":
        if raw not in param.enum:
            raise BadRequest(
                "invalid_parameter", f"{param.name}: {raw!r} is not one of {list(param.enum)}"
            )
        return raw
    raise AssertionError(kind)  # pragma: no cover


def _parse_query(
    params: Iterable[_Param], query: Mapping[str, list[str]], comma_arrays: bool
) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for param in params:
        if param.name not in query:
            continue
        raws = list(query[param.name])
        if param.array:
            if comma_arrays:
                raws = [part for raw in raws for part in raw.split(",")]
            parsed[param.name] = [_parse_value(param, raw) for raw in raws]
        else:
            parsed[param.name] = _parse_value(param, raws[-1])
    return parsed


def _parse_limit(query: Mapping[str, list[str]]) -> int | None:
    if "limit" not in query:
        return None
    raw = query["limit"][-1]
    if not raw.isdigit() or int(raw) < 1:
        raise BadRequest("invalid_parameter", f"limit: must be an integer >= 1, got {raw!r}")
    return int(raw)


def _date_window(
    start: str | None, end: str | None, params: Mapping[str, Any], prefix: str = ""
) -> bool:
    """The spec's ``startDate.*`` / ``endDate.*`` filters; a missing date always passes."""
    start_d = date.fromisoformat(start) if start else None
    end_d = date.fromisoformat(end) if end else None
    checks = (
        ("startDate.onOrBefore", start_d, lambda v, p: v <= p),
        ("startDate.onOrAfter", start_d, lambda v, p: v >= p),
        ("endDate.onOrBefore", end_d, lambda v, p: v <= p),
        ("endDate.onOrAfter", end_d, lambda v, p: v >= p),
    )
    for name, value, ok in checks:
        wanted = params.get(prefix + name)
        if wanted is not None and value is not None and not ok(value, wanted):
            return False
    return True


def _meta_window(meta: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """``meta.*.before`` is inclusive, ``meta.*.after`` exclusive (as the spec says)."""
    for which in ("created", "modified"):
        stamp = _parse_stored(meta[which])
        before = params.get(f"meta.{which}.before")
        after = params.get(f"meta.{which}.after")
        if before is not None and stamp > before:
            return False
        if after is not None and stamp <= after:
            return False
    return True


# --- The server -------------------------------------------------------------------------------


class SS12000Server:
    """An in-memory SS 12000 v2.1 API with an OAuth2 token endpoint, on 127.0.0.1.

    Use as a context manager or call ``start()`` / ``stop()``. ``base_url`` is the API root
    (``http://127.0.0.1:PORT/v2.0``), ``token_url`` the token endpoint.

    Settings (all attributes may be changed while the server runs):

    - ``token_lifetime``: seconds an issued access token lives (``expires_in`` is rounded up).
    - ``static_token``: a bearer token that is always accepted (no token endpoint needed).
    - ``require_auth``: False serves the API without any bearer token.
    - ``allowed_scopes``: None accepts any ``scope``; a set refuses others (``invalid_scope``).
    - ``max_page_size``: a server-side cap on page size (None: "as many as possible").
    - ``omit_null_page_token``: the last page leaves ``pageToken`` out instead of ``null``.
    - ``page_token_extra_params``: parameters besides ``limit`` tolerated with ``pageToken``
      (the spec allows only ``limit``; everything else gets 400).
    - ``comma_separated_arrays``: also split array parameters on commas (the spec's OpenAPI 3.0
      default is ``form``/``explode``: repeat the parameter).
    - ``render_tz``: the offset timestamps are written with (UTC by default).
    - ``clock_step_per_request``: seconds the clock moves on at each API request (not the
      token endpoint) before it is answered: a slow read, without waiting for it.
    """

    def __init__(
        self,
        *,
        client_id: str = "connector",
        client_secret: str = "s3cret-client",  # noqa: S107
        token_lifetime: float = 3600.0,
        static_token: str | None = None,
        require_auth: bool = True,
        allowed_scopes: Iterable[str] | None = None,
        base_path: str = "/v2.0",
        token_path: str = "/token",  # noqa: S107
        max_page_size: int | None = None,
        omit_null_page_token: bool = False,
        page_token_extra_params: Iterable[str] = (),
        comma_separated_arrays: bool = False,
        render_tz: tzinfo = UTC,
        clock_step_per_request: float = 0.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.clients: dict[str, str] = {client_id: client_secret}
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = float(token_lifetime)
        self.static_token = static_token
        self.require_auth = require_auth
        self.allowed_scopes = set(allowed_scopes) if allowed_scopes is not None else None
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.token_path = token_path
        self.max_page_size = max_page_size
        self.omit_null_page_token = omit_null_page_token
        self.page_token_extra_params = set(page_token_extra_params)
        self.comma_separated_arrays = comma_separated_arrays
        self.render_tz = render_tz
        self.clock_step_per_request = clock_step_per_request
        self.host = host

        self._lock = threading.RLock()
        self._data: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self._deleted: list[tuple[int, str, str, datetime]] = []
        self._seq = 0
        self._tokens: dict[str, tuple[datetime, str | None]] = {}
        self.tokens_issued = 0
        self._log: list[LoggedRequest] = []
        self._faults: list[Fault] = []
        self._clock_offset = timedelta(0)
        self._last_stamp: datetime | None = None
        self._page_key = secrets.token_bytes(32)
        self._httpd: _Httpd | None = None
        self._port = 0
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> SS12000Server:
        """Serve on a free port, or on the port of an earlier ``start`` (a restart after
        ``stop`` keeps ``base_url`` and ``token_url``, and all data and tokens)."""
        if self._httpd is not None:
            return self
        httpd = _Httpd((self.host, self._port), _Handler)
        httpd.ss12000 = self
        self._httpd = httpd
        self._port = int(httpd.server_address[1])
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut open keep-alive connections (clients see the server gone)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SS12000Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the SS 12000 server was never started")
        return self._port

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + self.base_path

    @property
    def token_url(self) -> str:
        return self.root_url + self.token_path

    # -- clock -------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The server's clock (UTC wall time plus what ``advance_clock`` added)."""
        return datetime.now(UTC) + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the server's clock on: timestamps of later changes and token expiry follow."""
        with self._lock:
            self._clock_offset += timedelta(seconds=seconds)

    def _stamp(self) -> datetime:
        """A change timestamp: whole milliseconds, strictly later than the previous one."""
        with self._lock:
            now = self.now()
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
            if self._last_stamp is not None and now <= self._last_stamp:
                now = self._last_stamp + timedelta(milliseconds=1)
            self._last_stamp = now
            return now

    def format_time(self, moment: datetime) -> str:
        """RFC 3339 with milliseconds in ``render_tz``, as this server writes timestamps."""
        return moment.astimezone(self.render_tz).isoformat(timespec="milliseconds")

    def stamp(self) -> str:
        """A fresh timestamp string, later than every change so far (a handy watermark)."""
        return self.format_time(self._stamp())

    # -- data: generic -----------------------------------------------------------------------

    def put(self, kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store ``obj`` as is (any shape: tests may store off-spec data on purpose).

        ``id`` defaults to a new uuid; ``meta`` defaults to created = modified = now.
        Replacing an existing id keeps its ``meta.created`` and bumps ``meta.modified``.
        """
        self._check_kind(kind)
        new = copy.deepcopy(dict(obj))
        new.setdefault("id", str(uuid.uuid4()))
        with self._lock:
            old = self._data[kind].get(new["id"])
            if "meta" not in new:
                stamp = self.format_time(self._stamp())
                created = old["meta"]["created"] if old and "meta" in old else stamp
                new["meta"] = {"created": created, "modified": stamp}
            self._data[kind][new["id"]] = new
            return copy.deepcopy(new)

    def get(self, kind: str, obj_id: str) -> dict[str, Any] | None:
        self._check_kind(kind)
        with self._lock:
            found = self._data[kind].get(obj_id)
            return copy.deepcopy(found) if found is not None else None

    def all(self, kind: str) -> list[dict[str, Any]]:
        self._check_kind(kind)
        with self._lock:
            return copy.deepcopy(list(self._data[kind].values()))

    def update(
        self,
        kind: str,
        obj_id: str,
        changes: Mapping[str, Any] | Callable[[dict[str, Any]], None] | None = None,
        /,
        **fields: Any,
    ) -> dict[str, Any]:
        """Change an object and bump ``meta.modified`` to the server's clock.

        ``changes`` (or keyword arguments) are merged at the top level, a value of None removes
        the key; or pass a function that mutates the stored dict in place.
        """
        self._check_kind(kind)
        with self._lock:
            obj = self._data[kind].get(obj_id)
            if obj is None:
                raise KeyError(f"{kind}/{obj_id}")
            if callable(changes):
                changes(obj)
            else:
                merged = {**(changes or {}), **fields}
                for key, value in merged.items():
                    if value is None:
                        obj.pop(key, None)
                    else:
                        obj[key] = copy.deepcopy(value)
            meta = obj.setdefault("meta", {})
            stamp = self.format_time(self._stamp())
            meta.setdefault("created", stamp)
            meta["modified"] = stamp
            return copy.deepcopy(obj)

    def touch(self, kind: str, obj_id: str) -> dict[str, Any]:
        """Bump ``meta.modified`` without changing anything else."""
        return self.update(kind, obj_id, {})

    def delete(self, kind: str, obj_id: str, *, missing_ok: bool = False) -> None:
        """Remove an object and record it for /deletedEntities with the server's clock."""
        self._check_kind(kind)
        with self._lock:
            if self._data[kind].pop(obj_id, None) is None and not missing_ok:
                raise KeyError(f"{kind}/{obj_id}")
            self.record_deletion(kind, obj_id)

    def record_deletion(self, kind: str, obj_id: str, at: datetime | None = None) -> None:
        """Record a deletion without removing anything (e.g. of something never served)."""
        self._check_kind(kind)
        with self._lock:
            self._seq += 1
            self._deleted.append((self._seq, kind, obj_id, at or self._stamp()))

    def clear_data(self) -> None:
        with self._lock:
            for objects in self._data.values():
                objects.clear()
            self._deleted.clear()

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; one of {KINDS}")

    # -- data: typed helpers -----------------------------------------------------------------

    def add_organisation(
        self,
        display_name: str,
        organisation_type: str,
        *,
        id: str | None = None,
        school_unit_code: str | None = None,
        school_types: Iterable[str] | None = None,
        parent: Mapping[str, Any] | str | None = None,
        organisation_code: str | None = None,
        organisation_number: str | None = None,
        municipality_code: str | None = None,
        start_date: date | str | None = None,
        end_date: date | str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        return self.put(
            "organisations",
            _drop_none(
                {
                    "id": id,
                    "displayName": display_name,
                    "organisationType": organisation_type,
                    "schoolUnitCode": school_unit_code,
                    "schoolTypes": list(school_types) if school_types is not None else None,
                    "parentOrganisation": {"id": _ref_id(parent)} if parent else None,
                    "organisationCode": organisation_code,
                    "organisationNumber": organisation_number,
                    "municipalityCode": municipality_code,
                    "startDate": _as_date(start_date),
                    "endDate": _as_date(end_date),
                    **extra,
                }
            ),
        )

    def add_huvudman(self, display_name: str, **kwargs: Any) -> dict[str, Any]:
        """A school organiser (e.g. a municipality)."""
        return self.add_organisation(display_name, "Huvudman", **kwargs)

    def add_school_unit(
        self,
        display_name: str,
        school_unit_code: str,
        school_types: Iterable[str] = ("GR",),
        **kwargs: Any,
    ) -> dict[str, Any]:
        """A ``Skolenhet`` with its 8-digit Skolverket code."""
        return self.add_organisation(
            display_name,
            "Skolenhet",
            school_unit_code=school_unit_code,
            school_types=school_types,
            **kwargs,
        )

    def add_person(
        self,
        given_name: str,
        family_name: str,
        *,
        id: str | None = None,
        civic_no: str | None = None,
        security_marking: str | None = None,
        emails: Iterable[Mapping[str, str] | tuple[str, str]] | None = None,
        eppns: Iterable[str] | None = None,
        enrolments: Iterable[Mapping[str, Any]] | None = None,
        external_identifiers: Iterable[Mapping[str, Any]] | None = None,
        responsibles: Iterable[Mapping[str, Any]] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A person. ``emails`` items are ``{type, value}`` or ``(type, value)`` tuples;
        ``responsibles`` items are ``{"person": {"id": ...}, "relationType": ...}``."""
        email_list = None
        if emails is not None:
            email_list = [
                dict(e) if isinstance(e, Mapping) else {"type": e[0], "value": e[1]} for e in emails
            ]
        return self.put(
            "persons",
            _drop_none(
                {
                    "id": id,
                    "givenName": given_name,
                    "familyName": family_name,
                    "civicNo": {"value": civic_no} if civic_no else None,
                    "securityMarking": security_marking,
                    "emails": email_list,
                    "eduPersonPrincipalNames": list(eppns) if eppns is not None else None,
                    "externalIdentifiers": (
                        [dict(x) for x in external_identifiers]
                        if external_identifiers is not None
                        else None
                    ),
                    "enrolments": [dict(e) for e in enrolments] if enrolments is not None else None,
                    "responsibles": (
                        [dict(r) for r in responsibles] if responsibles is not None else None
                    ),
                    **extra,
                }
            ),
        )

    def add_duty(
        self,
        person: Mapping[str, Any] | str,
        duty_at: Mapping[str, Any] | str,
        duty_role: str = "Lärare",
        *,
        id: str | None = None,
        start_date: date | str = "2024-08-01",
        end_date: date | str | None = None,
        signature: str | None = None,
        assignment_roles: Iterable[Mapping[str, Any]] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        return self.put(
            "duties",
            _drop_none(
                {
                    "id": id,
                    "person": {"id": _ref_id(person)},
                    "dutyAt": {"id": _ref_id(duty_at)},
                    "dutyRole": duty_role,
                    "signature": signature,
                    "startDate": _as_date(start_date),
                    "endDate": _as_date(end_date),
                    "assignmentRole": (
                        [dict(a) for a in assignment_roles]
                        if assignment_roles is not None
                        else None
                    ),
                    **extra,
                }
            ),
        )

    def add_group(
        self,
        display_name: str,
        organisation: Mapping[str, Any] | str,
        *,
        members: Iterable[Mapping[str, Any] | str] = (),
        group_type: str = "Klass",
        school_type: str | None = None,
        id: str | None = None,
        start_date: date | str = "2024-08-15",
        end_date: date | str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A group; ``members`` are persons (dict or id) or ``membership(...)`` dicts."""
        memberships = [
            dict(m) if isinstance(m, Mapping) and "person" in m else membership(m) for m in members
        ]
        return self.put(
            "groups",
            _drop_none(
                {
                    "id": id,
                    "displayName": display_name,
                    "groupType": group_type,
                    "schoolType": school_type,
                    "organisation": {"id": _ref_id(organisation)},
                    "startDate": _as_date(start_date),
                    "endDate": _as_date(end_date),
                    "groupMemberships": memberships,
                    **extra,
                }
            ),
        )

    def add_activity(
        self,
        display_name: str,
        organisation: Mapping[str, Any] | str,
        groups: Iterable[Mapping[str, Any] | str],
        *,
        teachers: Iterable[Mapping[str, Any] | str] = (),
        activity_type: str = "Undervisning",
        id: str | None = None,
        start_date: date | str = "2024-08-15",
        end_date: date | str | None = None,
        calendar_events_required: bool = True,
        **extra: Any,
    ) -> dict[str, Any]:
        """An ``Activity``: ``groups`` are groups (dict or id), ``teachers`` duties (dict or id)
        or ``duty_assignment(...)`` dicts."""
        assignments = [
            dict(t) if isinstance(t, Mapping) and "duty" in t else duty_assignment(t)
            for t in teachers
        ]
        return self.put(
            "activities",
            _drop_none(
                {
                    "id": id,
                    "displayName": display_name,
                    "activityType": activity_type,
                    "calendarEventsRequired": calendar_events_required,
                    "organisation": {"id": _ref_id(organisation)},
                    "groups": [{"id": _ref_id(g)} for g in groups],
                    "teachers": assignments,
                    "startDate": _as_date(start_date),
                    "endDate": _as_date(end_date),
                    **extra,
                }
            ),
        )

    # -- tokens ------------------------------------------------------------------------------

    def add_client(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self.clients[client_id] = client_secret

    def issue_token(self, scope: str | None = None) -> str:
        """An access token as the token endpoint would issue it (skipping the HTTP round)."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (self.now() + timedelta(seconds=self.token_lifetime), scope)
            self.tokens_issued += 1
        return token

    def expire_all_tokens(self) -> None:
        """Every issued token is now expired (``error="invalid_token"``, "expired")."""
        with self._lock:
            now = self.now()
            self._tokens = {t: (now, s) for t, (_, s) in self._tokens.items()}

    def revoke_all_tokens(self) -> None:
        """Forget every issued token (they become unknown). The static token stays."""
        with self._lock:
            self._tokens.clear()

    def _check_bearer(self, header: str | None) -> tuple[str, str] | None:
        """None if allowed, else (error code for WWW-Authenticate or "", description)."""
        if not self.require_auth:
            return None
        if not header:
            return ("", "no bearer token")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return ("invalid_token", "the Authorization header is not a bearer token")
        if self.static_token is not None and hmac.compare_digest(token, self.static_token):
            return None
        with self._lock:
            found = self._tokens.get(token)
        if found is None:
            return ("invalid_token", "the access token is not known")
        if self.now() >= found[0]:
            return ("invalid_token", "the access token expired")
        return None

    # -- request log -------------------------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def requests_to(self, path: str, method: str | None = None) -> list[LoggedRequest]:
        """Logged requests to one path (relative to the base path, e.g. ``/persons``)."""
        return [
            r
            for r in self.requests
            if r.path == path and (method is None or r.method == method.upper())
        ]

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def _log_request(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._log.append(entry)

    # -- faults ------------------------------------------------------------------------------

    def fail(
        self,
        endpoint: str,
        status: int | None = 500,
        *,
        page: int | None = None,
        times: int | None = None,
        delay: float = 0.0,
        disconnect: bool = False,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        method: str | None = None,
    ) -> Fault:
        """Make requests fail.

        ``endpoint`` is a path relative to the base path (``/persons``, ``/deletedEntities``),
        ``/persons/{id}`` or ``/persons/lookup`` for those routes, ``/token`` for the token
        endpoint, or ``*`` for every route. ``page`` (1-based) limits it to that page of a
        listing (page 1 is the request without ``pageToken``). ``times`` limits how many
        requests fail (None: until cleared). ``delay`` sleeps first (with ``status=None`` the
        request then succeeds: a slow server). ``disconnect`` closes the connection without
        any answer. ``body`` defaults to the spec's ``Error`` object; ``headers`` are added
        (e.g. ``{"Retry-After": "1"}``).
        """
        fault = Fault(
            endpoint=endpoint,
            status=status,
            page=page,
            times=times,
            delay=delay,
            disconnect=disconnect,
            headers=dict(headers or {}),
            body=body,
            method=method,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove_fault(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str, endpoint: str, page: int | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, endpoint, page):
                    fault.hits += 1
                    return fault
        return None

    # -- page tokens -------------------------------------------------------------------------

    def _encode_page_token(self, payload: Mapping[str, Any]) -> str:
        raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        body = base64.urlsafe_b64encode(raw).rstrip(b"=")
        sig = hmac.new(self._page_key, body, hashlib.sha256).digest()[:12]
        return (body + b"." + base64.urlsafe_b64encode(sig).rstrip(b"=")).decode()

    def _decode_page_token(self, token: str, endpoint: str) -> dict[str, Any]:
        try:
            body, _, sig = token.encode().partition(b".")
            want = hmac.new(self._page_key, body, hashlib.sha256).digest()[:12]
            given = base64.urlsafe_b64decode(sig + b"=" * (-len(sig) % 4))
            if not hmac.compare_digest(want, given):
                raise ValueError("bad signature")
            payload = json.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
        except (ValueError, UnicodeError):
            raise BadRequest("invalid_page_token", "pageToken is not valid") from None
        if payload.get("e") != endpoint:
            raise BadRequest("invalid_page_token", "pageToken belongs to another listing")
        return payload

    def _page_of(self, endpoint: str, query: Mapping[str, list[str]]) -> int | None:
        if "pageToken" not in query:
            return 1
        try:
            return int(self._decode_page_token(query["pageToken"][-1], endpoint)["p"])
        except BadRequest:
            return None

    # -- listing -----------------------------------------------------------------------------

    def _list(self, kind: str, query: Mapping[str, list[str]]) -> dict[str, Any]:
        limit = _parse_limit(query)
        if "pageToken" in query:
            others = set(query) - {"pageToken", "limit"} - self.page_token_extra_params
            if others:
                raise BadRequest(
                    "invalid_filter",
                    f"pageToken cannot be combined with other parameters: {sorted(others)}",
                )
            token = self._decode_page_token(query["pageToken"][-1], "/" + kind)
            base_query = {k: list(v) for k, v in token["q"].items()}
            after: list[str] | None = token["a"]
            page = int(token["p"])
            if limit is None:
                limit = token["l"]
        else:
            base_query = {k: list(v) for k, v in query.items() if k != "limit"}
            after = None
            page = 1
        params = _parse_query(LIST_PARAMS[kind], base_query, self.comma_separated_arrays)

        with self._lock:
            if kind == "deletedEntities":
                return self._list_deleted(params, base_query, limit, after, page)
            items = [o for o in self._data[kind].values() if self._selected(kind, o, params)]
            key, descending = self._sort_key(kind, params.get("sortkey"))
            items.sort(key=key, reverse=descending)
            if after is not None:
                last = tuple(after)
                items = [o for o in items if (key(o) < last if descending else key(o) > last)]
            size = self._page_size(limit)
            page_items, more = items[:size], len(items) > size
            data = [self._render(kind, o, params) for o in page_items]
            next_token = None
            if more:
                next_token = self._encode_page_token(
                    {
                        "e": "/" + kind,
                        "q": base_query,
                        "l": limit,
                        "a": list(key(page_items[-1])),
                        "p": page + 1,
                    }
                )
        return self._page_body(data, next_token)

    def _page_size(self, limit: int | None) -> int:
        sizes = [s for s in (limit, self.max_page_size) if s is not None]
        return min(sizes) if sizes else 1 << 62

    def _page_body(self, data: Any, next_token: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"data": data}
        if next_token is not None or not self.omit_null_page_token:
            body["pageToken"] = next_token
        return body

    def _list_deleted(
        self,
        params: Mapping[str, Any],
        base_query: Mapping[str, list[str]],
        limit: int | None,
        after: list[str] | None,
        page: int,
    ) -> dict[str, Any]:
        wanted = params.get("entities")
        kinds = (
            [DELETED_ENTITY_KEYS[e] for e in wanted]
            if wanted
            else [DELETED_KEY_OF_KIND[k] for k in KINDS]
        )
        since = params.get("after")
        rows = [
            row
            for row in self._deleted
            if DELETED_KEY_OF_KIND[row[1]] in kinds
            and (since is None or row[3] > since)
            and (after is None or row[0] > int(after[0]))
        ]
        size = self._page_size(limit)
        page_rows, more = rows[:size], len(rows) > size
        data: dict[str, list[str]] = {key: [] for key in dict.fromkeys(kinds)}
        for _, kind, obj_id, _ in page_rows:
            data[DELETED_KEY_OF_KIND[kind]].append(obj_id)
        next_token = None
        if more:
            next_token = self._encode_page_token(
                {
                    "e": "/deletedEntities",
                    "q": dict(base_query),
                    "l": limit,
                    "a": [str(page_rows[-1][0])],
                    "p": page + 1,
                }
            )
        return self._page_body(data, next_token)

    def _sort_key(
        self, kind: str, sortkey: str | None
    ) -> tuple[Callable[[dict[str, Any]], tuple[str, ...]], bool]:
        def person_name(o: dict[str, Any]) -> str:
            return f"{o.get('givenName', '')} {o.get('familyName', '')}"

        fields: dict[str, Callable[[dict[str, Any]], str]] = {
            "Modified": lambda o: _utc_key(o.get("meta", {}).get("modified")),
            "DisplayName": (
                person_name if kind == "persons" else lambda o: str(o.get("displayName", ""))
            ),
            "GivenName": lambda o: str(o.get("givenName", "")),
            "FamilyName": lambda o: str(o.get("familyName", "")),
            "CivicNo": lambda o: str((o.get("civicNo") or {}).get("value", "")),
            "StartDate": lambda o: str(o.get("startDate", "")),
            "EndDate": lambda o: str(o.get("endDate", "")),
        }
        if sortkey is None:
            # Default order: creation, then id (stable under changes, so keyset paging holds).
            return (lambda o: (_utc_key(o.get("meta", {}).get("created")), str(o["id"]))), False
        descending = sortkey.endswith("Desc")
        extract = fields[sortkey.removesuffix("Desc").removesuffix("Asc")]
        return (lambda o: (extract(o), str(o["id"]))), descending

    # -- selection (filters) -----------------------------------------------------------------

    def _selected(self, kind: str, obj: dict[str, Any], params: Mapping[str, Any]) -> bool:
        if "meta" in obj and not _meta_window(obj["meta"], params):
            return False
        if kind == "organisations":
            return self._org_selected(obj, params)
        if kind == "persons":
            return self._person_selected(obj, params)
        if kind == "duties":
            return self._duty_selected(obj, params)
        if kind == "activities":
            return self._activity_selected(obj, params)
        return self._group_selected(obj, params)

    @staticmethod
    def _org_selected(obj: dict[str, Any], params: Mapping[str, Any]) -> bool:
        if (
            "parent" in params
            and (obj.get("parentOrganisation") or {}).get("id") not in params["parent"]
        ):
            return False
        if "schoolUnitCode" in params and obj.get("schoolUnitCode") not in params["schoolUnitCode"]:
            return False
        if (
            "organisationCode" in params
            and obj.get("organisationCode") not in params["organisationCode"]
        ):
            return False
        if (
            "municipalityCode" in params
            and obj.get("municipalityCode") != params["municipalityCode"]
        ):
            return False
        if "type" in params and obj.get("organisationType") not in params["type"]:
            return False
        if "schoolTypes" in params and not set(obj.get("schoolTypes") or ()) & set(
            params["schoolTypes"]
        ):
            return False
        return _date_window(obj.get("startDate"), obj.get("endDate"), params)

    def _person_selected(self, obj: dict[str, Any], params: Mapping[str, Any]) -> bool:
        if "nameContains" in params:
            names = [
                str(obj.get(f, "")).casefold() for f in ("givenName", "middleName", "familyName")
            ]
            for needle in params["nameContains"]:
                if not any(needle.casefold() in name for name in names):
                    return False
        if "civicNo" in params and (obj.get("civicNo") or {}).get("value") != params["civicNo"]:
            return False
        if "eduPersonPrincipalName" in params and params["eduPersonPrincipalName"] not in (
            obj.get("eduPersonPrincipalNames") or ()
        ):
            return False
        wants_identifier = "identifier.value" in params or "identifier.context" in params
        if wants_identifier and not any(
            params.get("identifier.value", x.get("value")) == x.get("value")
            and params.get("identifier.context", x.get("context")) == x.get("context")
            for x in obj.get("externalIdentifiers") or ()
        ):
            return False
        relationship_params = [p for p in params if p.startswith("relationship.")]
        if relationship_params:
            relation_type = params.get("relationship.entity.type")
            organisation = params.get("relationship.organisation")
            relations = self._relations(obj["id"], relation_type)
            if not any(
                (organisation is None or org == organisation)
                and _date_window(start, end, params, prefix="relationship.")
                for org, start, end in relations
            ):
                return False
        return True

    def _relations(
        self, person_id: str, relation_type: str | None
    ) -> list[tuple[str | None, str | None, str | None]]:
        """(organisation id, startDate, endDate) of each relation of a person."""
        types = [relation_type] if relation_type else list(RELATIONSHIP_TYPES)
        out: list[tuple[str | None, str | None, str | None]] = []
        person = self._data["persons"].get(person_id, {})
        for rel in types:
            if rel == "enrolment":
                out += [
                    (e.get("enroledAt", {}).get("id"), e.get("startDate"), e.get("endDate"))
                    for e in person.get("enrolments") or ()
                ]
            elif rel == "duty":
                out += [
                    (d.get("dutyAt", {}).get("id"), d.get("startDate"), d.get("endDate"))
                    for d in self._data["duties"].values()
                    if d.get("person", {}).get("id") == person_id
                ]
            elif rel == "groupMembership":
                for group in self._data["groups"].values():
                    org = group.get("organisation", {}).get("id")
                    for m in group.get("groupMemberships") or ():
                        if m.get("person", {}).get("id") == person_id:
                            out.append((org, m.get("startDate"), m.get("endDate")))
                for duty in self._data["duties"].values():
                    if duty.get("person", {}).get("id") != person_id:
                        continue
                    for role in duty.get("assignmentRole") or ():
                        group = self._data["groups"].get(role.get("group", {}).get("id"), {})
                        org = group.get("organisation", {}).get("id")
                        out.append((org, role.get("startDate"), role.get("endDate")))
            elif rel == "responsibleFor.enrolment":
                for child in self._data["persons"].values():
                    if any(
                        r.get("person", {}).get("id") == person_id
                        for r in child.get("responsibles") or ()
                    ):
                        out += [
                            (e.get("enroledAt", {}).get("id"), e.get("startDate"), e.get("endDate"))
                            for e in child.get("enrolments") or ()
                        ]
            # placement.* and responsibleFor.placement: this fake holds no placements.
        return out

    def _duty_selected(self, obj: dict[str, Any], params: Mapping[str, Any]) -> bool:
        if "organisation" in params and obj.get("dutyAt", {}).get("id") not in self._subtree(
            params["organisation"]
        ):
            return False
        if "dutyRole" in params and obj.get("dutyRole") != params["dutyRole"]:
            return False
        if "person" in params and obj.get("person", {}).get("id") != params["person"]:
            return False
        return _date_window(obj.get("startDate"), obj.get("endDate"), params)

    def _subtree(self, root: str) -> set[str]:
        """An organisation and everything below it (via ``parentOrganisation``)."""
        found = {root}
        grew = True
        while grew:
            grew = False
            for org in self._data["organisations"].values():
                parent = (org.get("parentOrganisation") or {}).get("id")
                if parent in found and org["id"] not in found:
                    found.add(org["id"])
                    grew = True
        return found

    @staticmethod
    def _group_selected(obj: dict[str, Any], params: Mapping[str, Any]) -> bool:
        if "groupType" in params and obj.get("groupType") not in params["groupType"]:
            return False
        if "schoolTypes" in params and obj.get("schoolType") not in params["schoolTypes"]:
            return False
        if (
            "organisation" in params
            and obj.get("organisation", {}).get("id") not in params["organisation"]
        ):
            return False
        return _date_window(obj.get("startDate"), obj.get("endDate"), params)

    def _activity_selected(self, obj: dict[str, Any], params: Mapping[str, Any]) -> bool:
        group_ids = [(g or {}).get("id") for g in obj.get("groups") or ()]
        if "group" in params and params["group"] not in group_ids:
            return False
        if "organisation" in params and (obj.get("organisation") or {}).get(
            "id"
        ) not in self._subtree(params["organisation"]):
            return False
        if "teacher" in params and params["teacher"] not in [
            ((t or {}).get("duty") or {}).get("id") for t in obj.get("teachers") or ()
        ]:
            return False
        if "member" in params:
            # Members of its groups, whatever their dates (the spec: no time limits here).
            members = {
                (m.get("person") or {}).get("id")
                for gid in group_ids
                for m in (self._data["groups"].get(gid) or {}).get("groupMemberships") or ()
            }
            if params["member"] not in members:
                return False
        return _date_window(obj.get("startDate"), obj.get("endDate"), params)

    # -- rendering ---------------------------------------------------------------------------

    def _render(self, kind: str, obj: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        names = bool(params.get("expandReferenceNames"))
        expand = params.get("expand") or []
        if kind == "organisations":
            self._name_ref(out.get("parentOrganisation"), "organisations", names)
        elif kind == "persons":
            self._decorate_person(out, names)
            if expand:
                out["_embedded"] = self._person_embedded(out["id"], expand, names)
        elif kind == "duties":
            self._decorate_duty(out, names)
            if "person" in expand:
                embedded: dict[str, Any] = {}
                person = self._data["persons"].get(out.get("person", {}).get("id"))
                if person is not None:
                    embedded["person"] = self._decorate_person(copy.deepcopy(person), names)
                out["_embedded"] = embedded
        elif kind == "groups":
            self._decorate_group(out, names)
            if "assignmentRoles" in expand:
                out["_embedded"] = {"assignmentRoles": self._assignment_roles(out["id"])}
        elif kind == "activities":
            self._decorate_activity(out, names)
            if expand:
                out["_embedded"] = self._activity_embedded(out, expand, names)
        return out

    def _decorate_activity(self, activity: dict[str, Any], names: bool) -> dict[str, Any]:
        self._name_ref(activity.get("organisation"), "organisations", names)
        for group in activity.get("groups") or ():
            self._name_ref(group, "groups", names)
        for teacher in activity.get("teachers") or ():
            self._name_ref(teacher.get("duty"), "duties", names)
        return activity

    def _activity_embedded(
        self, activity: dict[str, Any], expand: list[str], names: bool
    ) -> dict[str, Any]:
        """``ActivityExpanded._embedded``: its groups and its teachers' duties (this fake holds
        no syllabuses, so ``syllabus`` embeds nothing)."""
        embedded: dict[str, Any] = {}
        if "groups" in expand:
            found = [self._data["groups"].get((g or {}).get("id")) for g in activity["groups"]]
            embedded["groups"] = [
                self._decorate_group(copy.deepcopy(g), names) for g in found if g is not None
            ]
        if "teachers" in expand:
            duties = [
                self._data["duties"].get(((t or {}).get("duty") or {}).get("id"))
                for t in activity.get("teachers") or ()
            ]
            embedded["teachers"] = [
                self._decorate_duty(copy.deepcopy(d), names) for d in duties if d is not None
            ]
        return embedded

    def _name_ref(self, ref: Any, kind: str, names: bool) -> None:
        if not isinstance(ref, dict) or "id" not in ref:
            return
        target = self._data[kind].get(ref["id"])
        if kind == "persons" and target is not None and "securityMarking" in target:
            # PersonReference.securityMarking mirrors the population register.
            ref["securityMarking"] = target["securityMarking"]
        if names and target is not None:
            if kind == "persons":
                ref["displayName"] = f"{target.get('givenName', '')} {target.get('familyName', '')}"
            elif "displayName" in target:
                ref["displayName"] = target["displayName"]

    def _decorate_person(self, person: dict[str, Any], names: bool) -> dict[str, Any]:
        for e in person.get("enrolments") or ():
            self._name_ref(e.get("enroledAt"), "organisations", names)
        for r in person.get("responsibles") or ():
            self._name_ref(r.get("person"), "persons", names)
        return person

    def _decorate_duty(self, duty: dict[str, Any], names: bool) -> dict[str, Any]:
        self._name_ref(duty.get("person"), "persons", names)
        self._name_ref(duty.get("dutyAt"), "organisations", names)
        for role in duty.get("assignmentRole") or ():
            self._name_ref(role.get("group"), "groups", names)
        return duty

    def _decorate_group(self, group: dict[str, Any], names: bool) -> dict[str, Any]:
        self._name_ref(group.get("organisation"), "organisations", names)
        for m in group.get("groupMemberships") or ():
            self._name_ref(m.get("person"), "persons", names)
        return group

    def _person_embedded(self, person_id: str, expand: list[str], names: bool) -> dict[str, Any]:
        embedded: dict[str, Any] = {}
        if "duties" in expand:
            embedded["duties"] = [
                self._decorate_duty(copy.deepcopy(d), names)
                for d in self._data["duties"].values()
                if d.get("person", {}).get("id") == person_id
            ]
        if "groupMemberships" in expand:
            entries = []
            for group in self._data["groups"].values():
                for m in group.get("groupMemberships") or ():
                    if m.get("person", {}).get("id") != person_id:
                        continue
                    fragment = {k: v for k, v in group.items() if k != "groupMemberships"}
                    fragment = self._decorate_group(copy.deepcopy(fragment), names)
                    entries.append(
                        _drop_none(
                            {
                                "group": fragment,
                                "startDate": m.get("startDate"),
                                "endDate": m.get("endDate"),
                            }
                        )
                    )
            embedded["groupMemberships"] = entries
        if "responsibleFor" in expand:
            entries = []
            for child in self._data["persons"].values():
                for r in child.get("responsibles") or ():
                    if r.get("person", {}).get("id") == person_id:
                        ref = {"id": child["id"]}
                        self._name_ref(ref, "persons", names)
                        entries.append(
                            _drop_none({"person": ref, "relationType": r.get("relationType")})
                        )
            embedded["responsibleFor"] = entries
        for placement_key in ("placements", "ownedPlacements"):
            if placement_key in expand:
                embedded[placement_key] = []  # this fake holds no placements
        return embedded

    def _assignment_roles(self, group_id: str) -> list[dict[str, Any]]:
        out = []
        for duty in self._data["duties"].values():
            for role in duty.get("assignmentRole") or ():
                if role.get("group", {}).get("id") == group_id:
                    out.append(
                        _drop_none(
                            {
                                "duty": {"id": duty["id"]},
                                "assignmentRoleType": role.get("assignmentRoleType"),
                                "startDate": role.get("startDate"),
                                "endDate": role.get("endDate"),
                            }
                        )
                    )
        return out

    # -- single objects and lookups -----------------------------------------------------------

    def _get_one(
        self, kind: str, obj_id: str, query: Mapping[str, list[str]]
    ) -> dict[str, Any] | None:
        if not _UUID_RE.match(obj_id):
            raise BadRequest("invalid_id", f"not a uuid: {obj_id!r}")
        params = _parse_query(ITEM_PARAMS[kind], query, self.comma_separated_arrays)
        with self._lock:
            obj = self._data[kind].get(obj_id) or self._data[kind].get(obj_id.lower())
            return self._render(kind, obj, params) if obj is not None else None

    def _lookup(self, kind: str, query: Mapping[str, list[str]], body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, dict):
            raise BadRequest("invalid_body", "the request body must be a JSON object")
        params = _parse_query(ITEM_PARAMS[kind], query, self.comma_separated_arrays)
        criteria: dict[str, Callable[[dict[str, Any]], Any]] = {"ids": lambda o: o.get("id")}
        if kind == "persons":
            criteria["civicNos"] = lambda o: (o.get("civicNo") or {}).get("value")
        if kind == "organisations":
            criteria["schoolUnitCodes"] = lambda o: o.get("schoolUnitCode")
            criteria["organisationCodes"] = lambda o: o.get("organisationCode")
        wanted: dict[str, set[str]] = {}
        for name, values in body.items():
            if name not in criteria or not isinstance(values, list):
                raise BadRequest("invalid_body", f"unexpected lookup field {name!r}")
            wanted[name] = {str(v) for v in values}
        with self._lock:
            return [
                self._render(kind, o, params)
                for o in self._data[kind].values()
                if any(criteria[name](o) in values for name, values in wanted.items())
            ]

    # -- token endpoint ----------------------------------------------------------------------

    def _token(
        self, headers: Any, form: Mapping[str, list[str]]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """``headers``: the request's (case-insensitive ``get``)."""
        no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}

        def error(status: int, code: str, description: str) -> tuple[int, dict[str, Any], dict]:
            extra = dict(no_store)
            if status == 401:
                extra["WWW-Authenticate"] = 'Basic realm="ss12000-token"'
            return status, {"error": code, "error_description": description}, extra

        def one(name: str) -> str | None:
            values = form.get(name)
            return values[-1] if values else None

        basic = None
        auth = headers.get("Authorization")
        if auth and auth.split(" ", 1)[0].lower() == "basic":
            try:
                decoded = base64.b64decode(auth.split(" ", 1)[1].strip(), validate=True).decode()
                user, _, password = decoded.partition(":")
                basic = (unquote_plus(user), unquote_plus(password))
            except (ValueError, UnicodeError, IndexError):
                return error(401, "invalid_client", "malformed Basic credentials")
        if basic is not None and one("client_secret") is not None:
            return error(400, "invalid_request", "use one client authentication method only")
        grant_type = one("grant_type")
        if grant_type is None:
            return error(400, "invalid_request", "grant_type is missing")
        if grant_type != "client_credentials":
            return error(400, "unsupported_grant_type", f"{grant_type!r} is not supported")
        client_id, secret = basic if basic is not None else (one("client_id"), one("client_secret"))
        known = self.clients.get(client_id or "")
        if client_id is None or secret is None or known is None:
            return error(401, "invalid_client", "unknown client or no client authentication")
        if not hmac.compare_digest(known.encode(), secret.encode()):
            return error(401, "invalid_client", "client authentication failed")
        scope = one("scope")
        if (
            self.allowed_scopes is not None
            and scope
            and not set(scope.split()) <= self.allowed_scopes
        ):
            return error(400, "invalid_scope", f"scope {scope!r} is not allowed")
        token = self.issue_token(scope)
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": max(0, math.ceil(self.token_lifetime)),
        }
        if scope:
            body["scope"] = scope
        return 200, body, no_store

    # -- dispatch ----------------------------------------------------------------------------

    def _route(self, rel: str) -> tuple[str, str, str | None] | None:
        """(endpoint pattern for faults, route name, id) for a path below the base path."""
        parts = rel.strip("/").split("/")
        if len(parts) == 1 and parts[0] in (*KINDS, "deletedEntities"):
            return "/" + parts[0], "list", None
        if len(parts) == 2 and parts[0] in KINDS:
            if parts[1] == "lookup":
                return f"/{parts[0]}/lookup", "lookup", None
            return f"/{parts[0]}/{{id}}", "item", parts[1]
        return None


def _error(code: str, message: str) -> dict[str, str]:
    """The spec's ``Error`` schema."""
    return {"code": code, "message": message}


class _Httpd(ThreadingHTTPServer):
    """A threading HTTP server that can cut its open connections when stopped."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self.ss12000: SS12000Server | None = None
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            open_now, self._open = list(self._open), set()
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else keep-alive answers wait ~40 ms for delayed ACKs
    server_version = "FakeSS12000/2.1"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    @property
    def app(self) -> SS12000Server:
        app = self.server.ss12000  # type: ignore[attr-defined]
        assert app is not None
        return app  # type: ignore[no-any-return]

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        app = self.app
        split = urlsplit(self.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        body = self._read_body()
        auth = self.headers.get("Authorization")
        bearer = None
        if auth and auth.split(" ", 1)[0].lower() == "bearer":
            bearer = auth.split(" ", 1)[1].strip() if " " in auth else ""
        rel = path
        if app.base_path and path.startswith(app.base_path + "/"):
            rel = path[len(app.base_path) :]
        is_token = path == app.token_path
        log_path = "/token" if is_token else rel

        def send(
            status: int | None, payload: Any, headers: Mapping[str, str] | None = None
        ) -> None:
            app._log_request(
                LoggedRequest(method, log_path, query, status, path, bearer, time.time())
            )
            if status is None:
                self.close_connection = True
                return
            data = b""
            if payload is not None:
                data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if data:
                self.wfile.write(data)

        def apply_fault(endpoint: str, page: int | None) -> bool:
            fault = app._take_fault(method, endpoint, page)
            if fault is None:
                return False
            if fault.delay:
                time.sleep(fault.delay)
            if fault.disconnect:
                send(None, None)
                return True
            if fault.status is None:
                return False
            payload = fault.body
            if payload is None:
                payload = _error("fault", f"injected fault: HTTP {fault.status}")
            send(fault.status, payload, fault.headers)
            return True

        if is_token:
            if apply_fault("/token", None):
                return
            no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}
            if method != "POST":
                send(
                    405,
                    {"error": "invalid_request", "error_description": "use POST"},
                    {"Allow": "POST", **no_store},
                )
                return
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if content_type != "application/x-www-form-urlencoded":
                send(
                    400,
                    {
                        "error": "invalid_request",
                        "error_description": "send application/x-www-form-urlencoded",
                    },
                    no_store,
                )
                return
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            status, payload, headers = app._token(self.headers, form)
            send(status, payload, headers)
            return

        route = app._route(rel) if rel != path or not app.base_path else None
        if route is None:
            send(404, _error("not_found", f"no such resource: {path}"))
            return
        endpoint, kind, obj_id = route
        allowed = "POST" if kind == "lookup" else "GET"
        if method != allowed:
            send(405, _error("method_not_allowed", f"use {allowed}"), {"Allow": allowed})
            return

        if app.clock_step_per_request:
            app.advance_clock(app.clock_step_per_request)
        denied = app._check_bearer(auth)
        if denied is not None:
            code, description = denied
            challenge = 'Bearer realm="ss12000"'
            if code:
                challenge += f', error="{code}", error_description="{description}"'
            send(401, _error(code or "unauthorized", description), {"WWW-Authenticate": challenge})
            return

        page = app._page_of(endpoint, query) if kind == "list" else None
        if apply_fault(endpoint, page):
            return
        try:
            if kind == "list":
                send(200, app._list(endpoint.lstrip("/"), query))
            elif kind == "item":
                found = app._get_one(endpoint.split("/")[1], str(obj_id), query)
                if found is None:
                    send(404, None)  # the spec's 404 has no body
                else:
                    send(200, found)
            else:
                try:
                    payload = json.loads(body or b"null")
                except ValueError:
                    raise BadRequest("invalid_body", "the request body is not JSON") from None
                send(200, app._lookup(endpoint.split("/")[1], query, payload))
        except BadRequest as exc:
            send(400, _error(exc.code, exc.message))
        except Exception as exc:  # a bug in the fake: answer it, so the test sees it
            send(500, _error("internal_error", f"{type(exc).__name__}: {exc}"))
