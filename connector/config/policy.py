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
    """hmac: HMAC-SHA256 of the person's source key with the secret key below (recommended):
    stable, and nobody without the key can turn it back into a student id or personnummer.
    source_key: send the source key as is; refused for keys that look like personnummer."""
    key: SecretStr | None = None
    """The secret key. Keep it forever: a new key gives everyone a new externalId (the
    connector would then re-link accounts by userName). Set key or key_file."""
    key_file: Path | None = None
    """A file holding the secret key (systemd LoadCredential, a Kubernetes secret)."""

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
    """The sources to join (by name), in order of preference."""
    prefer: dict[JoinField, list[str]] = Field(default_factory=dict)
    """Per field (given_name, family_name, email, username, mobile): the sources to take it
    from, in order, instead of the order of `sources`."""
    unmatched: dict[str, Literal["use", "skip"]] = Field(default_factory=dict)
    """Someone found in only one of the sources: use them as they are, or skip them (the
    default)."""


class SchoolConfig(_Strict):
    code: str = Field(pattern=r"^\d{8}$")
    """The school unit code (skolenhetskod, 8 digits; quote it)."""
    name: str = Field(min_length=1)
    """The school's name."""
    school_types: list[str] = Field(default_factory=list)
    """The school's school types (GR, GY...), for placements that carry none."""


class ScopeConfig(_Strict):
    """Which placements count. An empty list means 'all'."""

    school_types: list[str] = Field(default_factory=list)
    """School types in scope (a placement's own school type, else the school's types under
    `schools:`)."""
    school_units: list[str] = Field(default_factory=list)
    """Only these school unit codes."""
    staff_roles: list[str] = Field(default_factory=list)
    """Staff: only these duty roles (compared ignoring case)."""


_MONTH_DAY = r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


class RolloverHoldConfig(_Strict):
    """A yearly window (MM-DD to MM-DD, inclusive, Swedish local time) around the school-year
    rollover in which deactivations and deletions caused by missing placements are held back."""

    start: str = Field(pattern=_MONTH_DAY)
    """The window's first day, MM-DD (quote it)."""
    end: str = Field(pattern=_MONTH_DAY)
    """The window's last day, MM-DD (quote it)."""


class LifecycleConfig(_Strict):
    """What happens to accounts as people come, move and go."""

    delete_after_days: int = Field(default=90, ge=0)
    """A person gone from every source is deactivated (active=false) and taken out of their
    groups at once; the account the connector created is deleted this many days later. A
    person who comes back before then gets the same account back."""
    delete_accounts: bool = True
    """false: never delete anything (leavers stay deactivated at the vendor)."""
    protected_policy: Literal["delete", "deactivate"] = "delete"
    """A synced person who becomes protected: "delete" the account the connector created
    (their school is exactly what must not leak), or "deactivate" it and remove every
    membership. An account the connector only linked is always deactivated, never deleted."""
    delete_empty_groups: bool = False
    """Delete a school's group (one the connector created) once nobody in scope is left in
    it."""
    rollover_hold: RolloverHoldConfig | None = None
    """Inside this yearly window (MM-DD to MM-DD, inclusive, Swedish time) deactivations and
    deletions caused by missing placements are held back; creates and updates still flow."""
    rekey: Literal["ask", "auto", "never"] = "ask"
    """A new person whose userName or e-mail is that of an account whose person is gone (a new
    source key: a move from Procapita to Adela, a new student id) keeps that account: it
    moves to the new key with its vendor id and memberships (one PATCH of its externalId).
    "ask" holds each re-key until `connector approve` (neither account is touched meanwhile;
    `sync` exits 3); "auto" re-keys at once; "never" deactivates the old account and creates
    a new one."""


class ReconcileConfig(_Strict):
    """Ordinary cycles trust the state file; a full reconcile reads the vendor's real state."""

    full_every_hours: float = Field(default=24.0, ge=0)
    """A full reconcile lists the vendor's users and groups and repairs drift on owned objects
    (attributes changed by hand, owned accounts deleted at the vendor, memberships changed by
    hand). It runs when the last one is older than this many hours (0: every cycle), and on
    `connector sync --full`."""
    page_size: int = Field(default=200, ge=1, le=10000)
    """Resources per page when listing the vendor (the target's `concurrency` pages at a
    time)."""


class SafetyConfig(_Strict):
    """Thresholds and source health, on by default.

    A tripped deprovisioning limit holds back all deprovisioning of the cycle (creates and
    updates still go); a tripped update limit holds back the updates; a jump in newly protected
    persons holds back everything about them. Each until `connector approve` (or, for
    deprovisioning, `sync --allow-deprovision`). Percentages are of what the connector manages
    (its users, or its memberships).
    """

    max_deactivations: Limit = Field(default_factory=lambda: Limit(count=50, percent=5))
    """Deactivations in one cycle; percent of the users the connector manages."""
    max_deletions: Limit = Field(default_factory=lambda: Limit(count=50, percent=5))
    """Deletions in one cycle; also: how many linked accounts a full reconcile's listing may
    lack and be believed."""
    max_membership_removals: Limit = Field(default_factory=lambda: Limit(count=200, percent=5))
    """Group membership removals in one cycle; percent of the memberships it manages."""
    max_revocations: Limit = Field(default_factory=lambda: Limit(count=50, percent=5))
    """Role/entitlement values taken away (roles.revoke); percent of the values the connector
    granted."""
    max_updates: Limit = Field(default_factory=lambda: Limit(count=500, percent=10))
    """Updates of accounts and groups in one cycle (percent of the users and groups it
    manages): an edited mapping or a changed source can rewrite every account. Held: the
    updates."""
    max_newly_protected: Limit = Field(default_factory=lambda: Limit(count=10, percent=2))
    """Persons with an account newly marked protected in one cycle. Below the limit they are
    taken off the vendor at once, whatever the other rules say. Above it the marking itself
    is suspect (an export whose values changed): nothing is sent about them until approved."""
    min_source_percent: float = Field(default=80.0, ge=0, le=100)
    """A source returning fewer people than this share of its last good read is unhealthy: no
    deprovisioning is derived from it (a failed or empty source never counts either)."""
    max_skipped_percent: float = Field(default=50.0, ge=0, le=100)
    """A source with more than this share of its records skipped as unreadable (a wrong
    encoding or delimiter, a broken export) fails: nothing is sent or taken away for its
    people, and `check` fails it too, with a hint at the likely cause."""
    retry_delay_seconds: float = Field(default=60.0, ge=0)
    """An object the vendor refuses is tried again later, waiting this long and doubling each
    time, up to the maximum."""
    max_retry_delay_seconds: float = Field(default=6 * 3600.0, ge=0)
    """The longest wait before an object the vendor refuses is tried again."""
    degraded_after_cycles: int = Field(default=3, ge=1)
    """After this many cycles in a row in which the vendor failed (no answer, 429, 5xx, or a
    refusal of the connector as a whole), the connector is degraded (metric, status, /readyz)
    and slows its cycles down."""
