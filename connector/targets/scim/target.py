"""A SCIM 2.0 vendor as a target: users and groups over HTTP (client.py), planned by the
shared planner, applied with lookups before creates (apply.py), reconciled from a full
listing (reconcile.py)."""

from __future__ import annotations

import threading
from collections import Counter

from connector.config import ScimTargetConfig
from connector.mapping.desired import Desired, build_desired
from connector.mapping.profile import Mapping
from connector.people.externalid import ExternalIdMaker
from connector.people.scope import Scoped
from connector.planning.objects import Known
from connector.planning.plan import Plan, PlanRules, make_plan
from connector.progress import Progress
from connector.state.target import TargetState
from connector.targets.base import CheckReport
from connector.targets.base import Observation as BaseObservation
from connector.targets.connection import connection_options
from connector.targets.scim.apply import Applier, ApplyReport, VendorIndex
from connector.targets.scim.check import check_vendor
from connector.targets.scim.client import ScimClient
from connector.targets.scim.reconcile import (
    Observation,
    observe_vendor,
    resolve_interrupted_creates,
)
from connector.targets.scim.usernames import assign_usernames


def make_client(config: ScimTargetConfig) -> ScimClient:
    return ScimClient(
        config.base_url, config.bearer_token(), **connection_options(config, config.name)
    )


class ScimTarget:
    kind = "scim"

    def __init__(self, config: ScimTargetConfig, mapping: Mapping, client: ScimClient) -> None:
        self.name = config.name
        self.config = config
        self.mapping = mapping
        self.client = client

    def desire(
        self,
        scoped: Scoped,
        ids: ExternalIdMaker,
        state: TargetState | None = None,
        *,
        dry_run: bool = False,
    ) -> Desired:
        rule = self.mapping.username_rule
        if rule is None:
            return build_desired(scoped, self.mapping, ids)
        usernames = state.generated_usernames() if state else {}
        desired = build_desired(scoped, self.mapping, ids, usernames)
        assign_usernames(desired, rule, state, self.client, store=not dry_run)
        return desired

    def resolve_interrupted(self, state: TargetState, desired: Desired) -> None:
        if state.intents():
            resolve_interrupted_creates(state, self.client, desired)

    def observe(
        self,
        known: Known,
        desired: Desired,
        *,
        page_size: int = 200,
        progress: Progress | None = None,
    ) -> Observation:
        """Lists the vendor; changes nothing (see Observation.record)."""
        return observe_vendor(
            self.client,
            known,
            desired,
            page_size=page_size,
            limit=self.config.safety.max_deletions,
            progress=(progress, self.name) if progress else None,
            concurrency=self.config.concurrency,
        )

    def plan(self, desired: Desired, known: Known, rules: PlanRules) -> Plan:
        return make_plan(
            desired.users,
            desired.groups,
            known,
            protected=desired.protected_ids,
            keep=desired.held_ids,
            rules=rules,
            create_only=self.mapping.create_only,
            rekeys=desired.rekeys,
        )

    def apply(
        self,
        plan: Plan,
        state: TargetState,
        known: Known,
        observation: BaseObservation | None,
        stop: threading.Event | None,
        progress: Progress | None = None,
    ) -> ApplyReport:
        config = self.config
        index = None
        if isinstance(observation, Observation):
            # The whole vendor was just listed: creates can link from it without lookups.
            index = VendorIndex(
                observation.vendor_users.values(), observation.vendor_groups.values()
            )
        applier = Applier(
            self.client,
            state,
            known,
            concurrency=config.concurrency,
            stop=stop,
            retry_delay=config.safety.retry_delay_seconds,
            max_retry_delay=config.safety.max_retry_delay_seconds,
            index=index,
            bulk_max_operations=config.bulk_max_operations if config.bulk else None,
            create_only=self.mapping.create_only,
            progress=progress,
        )
        return applier.apply(plan)

    def check(self, linked: tuple[int, int]) -> CheckReport:
        return check_vendor(self.config, self.client, linked)

    def requests(self) -> Counter[str]:
        return Counter(self.client.requests_by_method)

    def close(self) -> None:
        self.client.close()
