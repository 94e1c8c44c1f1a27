"""The YAML configuration as typed models.

`${NAME}` anywhere in a string value is replaced by the environment variable NAME; secrets can
instead come from a file (`token_file:`, `key_file:`), which is how systemd credentials and
Kubernetes secrets arrive. Relative paths are resolved against the config file's folder, so a
config and its data can move together. Every problem is reported with the key it concerns.

The models live by what they configure: sources, targets, policy (scope, lifecycle, safety),
service; `load_config` reads a file.
"""

from connector.config.base import BEARER_RULE, Limit
from connector.config.loader import load_config, load_state_settings, load_yaml
from connector.config.model import Config
from connector.config.policy import (
    ExternalIdConfig,
    JoinConfig,
    LifecycleConfig,
    ReconcileConfig,
    RolloverHoldConfig,
    SafetyConfig,
    SchoolConfig,
    ScopeConfig,
)
from connector.config.problems import format_location, validation_problems
from connector.config.roles import DivisionConfig, RoleRule, RolesConfig
from connector.config.service import DaemonConfig, HealthConfig, LoggingConfig, StateConfig
from connector.config.sources import (
    SCHOOL_UNIT_PLACEHOLDER,
    CsvColumns,
    CsvSourceConfig,
    LdapAttributes,
    LdapGroupRule,
    LdapProtectedIdentityConfig,
    LdapSourceConfig,
    ProtectedIdentityConfig,
    SourceConfig,
)
from connector.config.ss12000 import Ss12000AuthConfig, Ss12000SourceConfig
from connector.config.targets import (
    DEFAULT_TARGET,
    ArchiveConfig,
    EgilEndpointsConfig,
    EgilOrganisationConfig,
    EgilTargetConfig,
    FileFormatConfig,
    FileTargetConfig,
    FtpsDeliveryConfig,
    LocalDeliveryConfig,
    ScimTargetConfig,
    SftpDeliveryConfig,
    TargetConfig,
    VendorConfig,
)

__all__ = [
    "BEARER_RULE",
    "DEFAULT_TARGET",
    "SCHOOL_UNIT_PLACEHOLDER",
    "ArchiveConfig",
    "Config",
    "CsvColumns",
    "CsvSourceConfig",
    "DaemonConfig",
    "DivisionConfig",
    "EgilEndpointsConfig",
    "EgilOrganisationConfig",
    "EgilTargetConfig",
    "ExternalIdConfig",
    "FileFormatConfig",
    "FileTargetConfig",
    "FtpsDeliveryConfig",
    "HealthConfig",
    "JoinConfig",
    "LdapAttributes",
    "LdapGroupRule",
    "LdapProtectedIdentityConfig",
    "LdapSourceConfig",
    "LifecycleConfig",
    "Limit",
    "LocalDeliveryConfig",
    "LoggingConfig",
    "ProtectedIdentityConfig",
    "ReconcileConfig",
    "RoleRule",
    "RolesConfig",
    "RolloverHoldConfig",
    "SafetyConfig",
    "SchoolConfig",
    "ScimTargetConfig",
    "ScopeConfig",
    "SftpDeliveryConfig",
    "SourceConfig",
    "Ss12000AuthConfig",
    "Ss12000SourceConfig",
    "StateConfig",
    "TargetConfig",
    "VendorConfig",
    "format_location",
    "load_config",
    "load_state_settings",
    "load_yaml",
    "validation_problems",
]
