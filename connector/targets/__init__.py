"""The places the connector keeps in step with the sources (see base.py for what a target
does): SCIM 2.0 vendors (scim/), vendors fed by a delivered CSV file (file/) and vendors that
take EGIL, the SS 12000:2018 profile of SCIM (egil/)."""

from __future__ import annotations

from collections.abc import Callable

from connector.config import (
    Config,
    EgilTargetConfig,
    FileTargetConfig,
    ScimTargetConfig,
    TargetConfig,
)
from connector.mapping.profile import load_mapping
from connector.targets.base import Target
from connector.targets.egil.http import make_egil_transport
from connector.targets.egil.target import EgilTarget, check_mapping
from connector.targets.file.target import build_file_target
from connector.targets.scim.client import ScimClient
from connector.targets.scim.target import ScimTarget, make_client

ClientFactory = Callable[[ScimTargetConfig], ScimClient]


def build_target(config: TargetConfig, client_factory: ClientFactory = make_client) -> Target:
    """One target, its mapping loaded (a ConfigError names what is wrong with it)."""
    if isinstance(config, FileTargetConfig):
        return build_file_target(config)
    if isinstance(config, EgilTargetConfig):
        mapping = load_mapping(config.mapping)
        check_mapping(mapping)
        return EgilTarget(config, mapping, make_egil_transport(config))
    return ScimTarget(config, load_mapping(config.mapping), client_factory(config))


def build_targets(
    config: Config,
    names: list[str] | None = None,
    client_factory: ClientFactory = make_client,
) -> list[Target]:
    """The configured targets (or the named ones, in the config's order)."""
    chosen = [t for t in config.targets if names is None or t.name in names]
    return [build_target(target, client_factory) for target in chosen]


__all__ = ["Target", "build_target", "build_targets"]
