"""The whole configuration file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from connector.config.base import _Strict
from connector.config.builtin import MappingPath
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
    # One SCIM vendor (`vendor:` and `mapping:`), or any number of targets (`targets:`).
    vendor: VendorConfig | None = None
    mapping: MappingPath | None = None
    targets: list[TargetConfig] = Field(default_factory=list)
    state: StateConfig
    external_id: ExternalIdConfig
    sources: list[SourceConfig] = Field(min_length=1)
    schools: list[SchoolConfig] = Field(default_factory=list)
    scope: ScopeConfig = Field(default_factory=ScopeConfig)
    join: JoinConfig | None = None
    roles: RolesConfig = Field(default_factory=RolesConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    # Where the config came from; set by load_config, not by the file.
    source_file: Path = Field(default=Path("config.yaml"), exclude=True)

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
