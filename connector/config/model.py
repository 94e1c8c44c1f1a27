"""The whole configuration file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from connector.config.base import _Strict
from connector.config.builtin import MappingPath
from connector.config.notify import NotifyConfig
from connector.config.policy import (
    ExternalIdConfig,
    JoinConfig,
    LifecycleConfig,
    ReconcileConfig,
    SafetyConfig,
    SchoolConfig,
    ScopeConfig,
)
from connector.config.roles import RolesConfig
from connector.config.service import DaemonConfig, HealthConfig, LoggingConfig, StateConfig
from connector.config.sources import CsvSourceConfig, LdapSourceConfig, SourceConfig
from connector.config.targets import DEFAULT_TARGET, ScimTargetConfig, TargetConfig, VendorConfig


class Config(_Strict):
    """The connector's configuration file: where it reads people (sources), where it sends
    them (targets), and the rules in between."""

    vendor: VendorConfig | None = None
    """One SCIM vendor, the target named `default`: the keys of a SCIM target without name,
    kind and safety, with `mapping:` beside it. Or use `targets:`, not both."""
    mapping: MappingPath | None = None
    """With `vendor:`: that vendor's mapping: builtin:NAME or a mapping file (with `targets:`, each target names its own)."""
    targets: list[TargetConfig] = Field(default_factory=list)
    """Each target is a vendor with its own SCIM API, mapping and (optionally) safety limits.
    The sources are read once per cycle for all of them; a target that fails never stops the
    others. A target's name keys its records in the state file: choose it once and keep it."""
    state: StateConfig
    """Local state: the state file (SQLite)."""
    external_id: ExternalIdConfig
    """The vendor's externalId: how it is derived from a person's source key."""
    sources: list[SourceConfig] = Field(min_length=1)
    """Sources of people: roster CSV files (type: csv), the directory (type: ldap), SS 12000
    APIs (type: ss12000), each read once per cycle."""
    schools: list[SchoolConfig] = Field(default_factory=list)
    """Names and school types by school unit code. Optional: names also come from a source's
    school_name column; names here win. A school without a known name is named by its code.
    Directory group rule templates (a source's group_rules) expand to one group per school
    here."""
    scope: ScopeConfig = Field(default_factory=ScopeConfig)
    """A person is sent only if at least one placement is in scope. An empty list means "all"."""
    join: JoinConfig | None = None
    """Entries with the same join key in these sources become one person: each field from the
    first listed source that has it (override per field under `prefer`), placements from all,
    and protected if any source says so. The join key is never sent to the vendor. A join key
    held by several entries of one source is a conflict: reported, and nobody involved is
    changed."""
    roles: RolesConfig = Field(default_factory=RolesConfig)
    """Role values the connector grants and owns value by value. Sent only to targets whose
    mapping has a `roles:` section (as SCIM `roles` or `entitlements` values: value, display,
    type - the type is the school unit code or the division's name, the display its name). The
    connector adds and removes only values it granted: a value an admin granted by hand at the
    vendor is never touched, also not by a full reconcile. A protected person is granted
    nothing."""
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    """Accounts carry talking-book rights and passwords: they are moved and renamed, never
    re-created. Only accounts the connector created or linked are ever changed."""
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)
    """Reconciling with the vendor's real state."""
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    """A cycle that would take away more than these limits holds back ALL of its
    deprovisioning (creates and updates still go): `sync` exits 3, `connector status` and the
    metrics show it, and `connector approve` shows the held plan and releases it once (or
    `sync --allow-deprovision` for one run). A limit trips when both the count and the
    percentage are exceeded. A target's own `safety:` overrides these key by key."""
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    """Running as a service (connector run)."""
    health: HealthConfig = Field(default_factory=HealthConfig)
    """Health and metrics over HTTP."""
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    """Logging: its format and level."""
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    """Tell an operator when it matters (README, "Notifications"): a target's changes held back by
    a safety rule, a target degraded or recovered, a changed config rejected, a source failing
    cycle after cycle."""
    # Where the config came from; set by load_config, not by the file.
    source_file: SkipJsonSchema[Path] = Field(default=Path("config.yaml"), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _targets_inherit_safety(cls, data: Any) -> Any:
        """A target's `safety:` overrides the top-level one key by key."""
        if not isinstance(data, dict) or not isinstance(data.get("targets"), list):
            return data
        top = data.get("safety")
        top = top if isinstance(top, dict) else {}
        targets = []
        for target in data["targets"]:
            if isinstance(target, dict):
                own = target.get("safety")
                own = own if isinstance(own, dict) else {}
                # `kind:` may be left out for a SCIM target (the first kind there was).
                target = {"kind": "scim", **target, "safety": {**top, **own}}
            targets.append(target)
        return {**data, "targets": targets}

    @model_validator(mode="after")
    def _vendor_or_targets(self) -> Config:
        if self.vendor is not None and self.targets:
            raise ValueError("set either vendor: (one SCIM vendor) or targets:, not both")
        if self.vendor is None and not self.targets:
            raise ValueError("targets: at least one target is needed (or vendor: and mapping:)")
        if self.targets and self.mapping is not None:
            raise ValueError("mapping: with targets:, each target names its own mapping")
        if self.vendor is not None:
            if self.mapping is None:
                raise ValueError("mapping: is required with vendor:")
            legacy = ScimTargetConfig(
                **self.vendor.model_dump(),
                name=DEFAULT_TARGET,
                mapping=self.mapping,
                safety=self.safety,
            )
            object.__setattr__(self, "targets", [legacy])  # the one target, as if configured
        names = [t.name for t in self.targets]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"targets: names must be unique; repeated: {', '.join(repeated)}")
        return self

    def target(self, name: str) -> TargetConfig:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)

    @field_validator("sources")
    @classmethod
    def _unique_source_names(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        names = [s.name for s in sources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"source names must be unique; repeated: {', '.join(duplicates)}")
        return sources

    @model_validator(mode="after")
    def _group_templates_have_schools(self) -> Config:
        if self.schools:
            return self
        templates = [
            f"sources[{i}].group_rules[{j}].group"
            for i, source in enumerate(self.sources)
            if isinstance(source, LdapSourceConfig)
            for j, rule in enumerate(source.group_rules)
            if rule.is_template
        ]
        templates += [
            f"roles.rules[{i}].group" for i, rule in enumerate(self.roles.rules) if rule.is_template
        ]
        if templates:
            raise ValueError(
                f"{', '.join(templates)}: a group template expands to one group per school unit "
                "listed under `schools:`, and `schools:` lists none"
            )
        return self

    def school_codes(self) -> list[str]:
        return [school.code for school in self.schools]

    @model_validator(mode="after")
    def _join_names_real_sources(self) -> Config:
        if self.join is None:
            return self
        by_name = {s.name: s for s in self.sources}
        named = set(self.join.sources) | set(self.join.unmatched)
        for names in self.join.prefer.values():
            named |= set(names)
        unknown = sorted(named - by_name.keys())
        if unknown:
            raise ValueError(f"join: unknown source(s) {', '.join(unknown)}")
        for name in self.join.sources:
            source = by_name[name]
            if isinstance(source, CsvSourceConfig):
                mapped = source.columns.join_key
            elif isinstance(source, LdapSourceConfig):
                mapped = source.attributes.join_key
            else:
                mapped = source.join_key
            if not mapped:
                raise ValueError(f"join: source {name} maps no join_key")
        return self
