"""A vendor that takes EGIL (Sambruk's SCIM profile of SS 12000:2018) as a target.

The people and schools in scope become EGIL's objects (objects.py), planned by the shared
planner with EGIL's rules (plan.py) and guarded like any target's; each object is then sent
whole, in EGIL's send order (changes.py, apply.py). Ids are UUIDs (ids.py); a target that was
`kind: scim` has its records' ids rewritten once (state/uuids.py).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from typing import ClassVar

import structlog

from connector.config import EgilTargetConfig
from connector.errors import ConfigError
from connector.mapping.desired import Desired
from connector.mapping.profile import Mapping
from connector.people.externalid import ExternalIdMaker
from connector.people.scope import Scoped
from connector.planning.objects import Known
from connector.planning.plan import Plan, PlanRules
from connector.progress import Progress
from connector.state.target import TargetState
from connector.state.uuids import migrate_to_uuids, migrated
from connector.targets.base import ApplyReport, CheckReport
from connector.targets.base import Observation as BaseObservation
from connector.targets.egil.apply import EgilApplier
from connector.targets.egil.check import check_egil
from connector.targets.egil.ids import HEX32, EgilIds, egil_uuid
from connector.targets.egil.objects import RESOURCE, EgilBuilder
from connector.targets.egil.plan import egil_plan
from connector.targets.egil.wire import Wire
from connector.targets.scim.transport import Transport

log = structlog.get_logger(__name__)

# What an EGIL User takes from a mapping (the rest of EGIL is built by the connector).
EGIL_USER_PATHS = frozenset({"userName", "name.givenName", "name.familyName", "displayName"})
EGIL_USER_PATHS |= {"emails"}


class EgilObservation:
    """EGIL servers need not offer GET: a full reconcile sends every known object whole
    again, after the plan."""

    described: ClassVar[str] = "full reconcile: every object sent whole again"

    def __init__(self, known: Known) -> None:
        self.known = known

    def record(self, state: TargetState) -> None:
        """Nothing was learnt that the state does not already hold."""


class EgilTarget:
    kind = "egil"

    def __init__(self, config: EgilTargetConfig, mapping: Mapping, transport: Transport) -> None:
        self.name = config.name
        self.config = config
        self.mapping = mapping
        self.transport = transport
        self._ids: EgilIds | None = None

    def desire(
        self,
        scoped: Scoped,
        ids: ExternalIdMaker,
        state: TargetState | None = None,
        *,
        dry_run: bool = False,
    ) -> Desired:
        self._ids = EgilIds(ids)
        if state is not None and not dry_run and not migrated(state):
            rewritten = migrate_to_uuids(state, self._ids.person)
            if rewritten:
                log.warning("egil.ids_migrated", users=rewritten)
        return EgilBuilder(self.config, self.mapping, ids).build(scoped)

    def resolve_interrupted(self, state: TargetState, desired: Desired) -> None:
        """Nothing to look up: a create sent before is found by its answer (a POST of an id
        that exists is sent again as a PUT, see apply.py)."""

    def observe(
        self,
        known: Known,
        desired: Desired,
        *,
        page_size: int = 200,
        progress: Progress | None = None,
    ) -> EgilObservation:
        """A full reconcile: what the state file holds is sent whole again once the plan is
        applied (apply.py), as it is believed to be; nothing is read (GET is optional at EGIL
        servers), so nothing is learnt either."""
        return EgilObservation(known)

    def plan(self, desired: Desired, known: Known, rules: PlanRules) -> Plan:
        return egil_plan(desired, self._in_uuids(known), rules, self.mapping.create_only)

    def _in_uuids(self, known: Known) -> Known:
        """A state not yet migrated (`connector plan` reads it, changing nothing): its ids as
        they will be once migrated."""
        if not any(HEX32.match(ext) for ext in known.users):
            return known
        person = self._ids.person if self._ids else egil_uuid
        users = {}
        for ext, user in known.users.items():
            uuid = person(ext) if HEX32.match(ext) else ext
            users[uuid] = replace(user, external_id=uuid, vendor_id=uuid)
        groups = {e: g for e, g in known.groups.items() if g.attributes.get(RESOURCE)}
        return Known(users, groups)

    def apply(
        self,
        plan: Plan,
        state: TargetState,
        known: Known,
        observation: BaseObservation | None,
        stop: threading.Event | None,
        progress: Progress | None = None,
    ) -> ApplyReport:
        resend = isinstance(observation, EgilObservation)
        applier = EgilApplier(
            self.transport,
            Wire(self.transport.base_url, self.config.endpoints),
            state,
            _with_all_members(plan, known, state),
            concurrency=self.config.concurrency,
            stop=stop,
            retry_delay=self.config.safety.retry_delay_seconds,
            max_retry_delay=self.config.safety.max_retry_delay_seconds,
            progress=progress,
        )
        return applier.apply(plan, resend=resend)

    def check(self, linked: tuple[int, int]) -> CheckReport:
        return check_egil(self.config, self.transport, linked)

    def requests(self) -> Counter[str]:
        return Counter(self.transport.requests_by_method)

    def close(self) -> None:
        self.transport.close()


def _with_all_members(plan: Plan, known: Known, state: TargetState) -> Known:
    """A group is sent whole: its members as the state file records them all, not only those
    of the few users an on-demand sync (`sync --only`) loaded."""
    changed = {op.target for op in plan.operations if op.target in known.groups}
    if not changed:
        return known
    recorded = state.memberships_of(changed)
    groups = dict(known.groups)
    for ext in changed:
        groups[ext] = replace(known.groups[ext], members=recorded[ext])
    return Known(known.users, groups)


def check_mapping(mapping: Mapping) -> None:
    """An EGIL User takes names, userName and e-mail only; what else a mapping names would
    never be sent, so it is refused rather than silently dropped."""
    problems = [
        f"user.attributes.{path}: EGIL takes only {', '.join(sorted(EGIL_USER_PATHS))}"
        for path in sorted(mapping.user_templates.keys() - EGIL_USER_PATHS)
    ]
    if mapping.username_rule is not None:
        problems.append("user.generate_username: not available for an EGIL target")
    if mapping.values:
        problems.append("roles/entitlements: not part of EGIL")
    if problems:
        raise ConfigError(str(mapping.path), problems)
