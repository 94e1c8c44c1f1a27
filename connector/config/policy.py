"""Who is in scope and what happens to them: ids, joins, schools, lifecycle, safety."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connector.config.base import Limit, _Strict, secret_value, unpadded


class ExternalIdConfig(_Strict):
    """How the vendor's externalId is derived from a person's source key.

    `hmac` (the default) sends HMAC-SHA256(key, source key): stable, opaque, and impossible to
    turn back into a student id or personal identity number without the key. `source_key`
    sends the key as is and is refused for values that look like personal identity numbers.
    """

    mode: Literal["hmac", "source_key"] = "hmac"
    key: SecretStr | None = None
    key_file: Path | None = None

    _key = field_validator("key")(unpadded)

    @model_validator(mode="after")
    def _key_for_hmac(self) -> ExternalIdConfig:
        if self.key is not None and self.key_file is not None:
            raise ValueError("set either key or key_file, not both")
        if self.mode == "hmac" and self.key is None and self.key_file is None:
            raise ValueError("mode hmac needs a secret key (key or key_file)")
        return self

    def secret(self) -> bytes:
        value = secret_value(self.key, self.key_file)
        assert value is not None  # the validator requires one of them
        return value.encode()


JoinField = Literal["given_name", "family_name", "email", "username", "mobile"]


class JoinConfig(_Strict):
    """Merge the same person's entries in several sources by a shared join key.

    Names, e-mail and username come from the first listed source that has a value (override
    per field with `prefer`); placements are the union; protected if any source says so.
    """

    sources: list[str] = Field(min_length=2)
    prefer: dict[JoinField, list[str]] = Field(default_factory=dict)
    # A person found in only some of the joined sources: "use" them as they are, or "skip"
    # (and report). Per source name; a source not listed here skips.
    unmatched: dict[str, Literal["use", "skip"]] = Field(default_factory=dict)


class SchoolConfig(_Strict):
    code: str = Field(pattern=r"^\d{8}$")
    name: str = Field(min_length=1)
    school_types: list[str] = Field(default_factory=list)


class ScopeConfig(_Strict):
    """Which placements count. An empty list means 'all'."""

    school_types: list[str] = Field(default_factory=list)
    school_units: list[str] = Field(default_factory=list)
    staff_roles: list[str] = Field(default_factory=list)


_MONTH_DAY = r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


class RolloverHoldConfig(_Strict):
    """A yearly window (MM-DD to MM-DD, inclusive, Swedish local time) around the school-year
    rollover in which deactivations and deletions caused by missing placements are held back."""

    start: str = Field(pattern=_MONTH_DAY)
    end: str = Field(pattern=_MONTH_DAY)


class LifecycleConfig(_Strict):
    # Delete an account the connector created this many days after it was deactivated.
    delete_after_days: int = Field(default=90, ge=0)
    # False: never delete anything; leavers stay deactivated.
    delete_accounts: bool = True
    # A person who became protected: delete the account the connector created, or only
    # deactivate it and remove all memberships. Linked (not created) accounts are deactivated.
    protected_policy: Literal["delete", "deactivate"] = "delete"
    # Delete a school's group (one the connector created) once nobody in scope is left in it.
    delete_empty_groups: bool = False
    rollover_hold: RolloverHoldConfig | None = None
    # A new person whose userName or e-mail is that of an account whose person is gone (a new
    # source key: a move to another student information system, a new student id) keeps that
    # account: "ask" holds the re-key until `connector approve`, "auto" does it at once,
    # "never" deactivates the old account and creates a new one (if the vendor lets it).
    rekey: Literal["ask", "auto", "never"] = "ask"


class ReconcileConfig(_Strict):
    # A full reconcile reads the vendor's real state and repairs drift. It runs when the last
    # one is older than this many hours (0: every cycle), or on `sync --full`.
    full_every_hours: float = Field(default=24.0, ge=0)
    # Resources per page when listing the vendor's users and groups.
    page_size: int = Field(default=200, ge=1, le=10000)


class SafetyConfig(_Strict):
    """Thresholds and source health, on by default.

    A tripped deprovisioning limit holds back all deprovisioning of the cycle (creates and
    updates still go); a tripped update limit holds back the updates; a jump in newly protected
    persons holds back everything about them. Each until `connector approve` (or, for
    deprovisioning, `sync --allow-deprovision`). Percentages are of what the connector manages
    (its users, or its memberships).
    """

    max_deactivations: Limit = Field(default_factory=lambda: Limit(count=50, percent=5))
    max_deletions: Limit = Field(default_factory=lambda: Limit(count=50, percent=5))
    max_membership_removals: Limit = Field(default_factory=lambda: Limit(count=200, percent=5))
    # Role and entitlement values the connector granted and takes away (`roles.revoke`).
    max_revocations: Limit = Field(default_factory=lambda: Limit(count=50, percent=5))
    # Updates of accounts and groups in one cycle (a mapping edit can rewrite every account).
    max_updates: Limit = Field(default_factory=lambda: Limit(count=500, percent=10))
    # Persons with an account who are newly marked protected in one cycle. Below the limit
    # they are taken off the vendor at once; above it the marking itself is suspect (an export
    # that changed its values), so nothing is sent about them until approved.
    max_newly_protected: Limit = Field(default_factory=lambda: Limit(count=10, percent=2))
    # A source that returns fewer people than this share of its last good read is unhealthy:
    # no deprovisioning is derived from it in that cycle.
    min_source_percent: float = Field(default=80.0, ge=0, le=100)
    # A source with more than this share of its records skipped as unreadable (a wrong
    # encoding or delimiter, a broken export) fails: nothing is sent or taken away for the
    # people in it.
    max_skipped_percent: float = Field(default=50.0, ge=0, le=100)
    # Objects that keep failing at the vendor wait this long before the next try, doubling
    # with each failure, up to max_retry_delay_seconds.
    retry_delay_seconds: float = Field(default=60.0, ge=0)
    max_retry_delay_seconds: float = Field(default=6 * 3600.0, ge=0)
    # After this many cycles in a row in which the vendor failed, the connector is degraded:
    # it says so (status, metrics, /readyz) and slows its cycles down.
    degraded_after_cycles: int = Field(default=3, ge=1)
