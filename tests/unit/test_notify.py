"""Notifications without a server: which events a cycle's results bring, the rate limit (with a
fake clock), what a message says, and the `notify:` config's rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml
from pydantic import ValidationError

from connector.config import Limit, RolloverHoldConfig, SafetyConfig, validation_problems
from connector.config.notify import EmailConfig, NotifyConfig, WebhookConfig
from connector.cycle.result import CycleResult, SourceFailure
from connector.mapping.desired import Desired
from connector.planning.guard import (
    hold_for_failed_sources,
    hold_for_newly_protected,
    hold_for_rekeys,
    hold_for_rollover,
    hold_for_thresholds,
    hold_for_updates,
    shrunken_sources,
)
from connector.planning.objects import Known, KnownGroup, KnownUser
from connector.planning.plan import Operation, Plan
from connector.service.notify.events import (
    GENERIC_REASON,
    Detector,
    Event,
    config_keys,
    safe_reason,
)
from connector.service.notify.limits import RateLimiter
from connector.service.notify.message import Message
from tests.support.paths import REPO

SOURCES = ["students", "staff"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def result(
    target: str = "ilt",
    *,
    held: int = 0,
    first: int = 0,
    degraded: bool = False,
    failed: tuple[str, ...] = (),
    run_id: str = "run-1",
) -> CycleResult:
    """A cycle's result for one target: `held` deactivations held back (of users first..)."""
    failures = [SourceFailure(name, "cannot read /srv/x.csv") for name in failed]
    out = CycleResult(run_id, Plan(), Desired(), [], failures, target)
    ops = [Operation("deactivate_user", f"u{i}", f"v{i}") for i in range(first, first + held)]
    if ops:
        out.held_plan = Plan(ops)
        out.held_back = {"deactivate_user": held}
        out.hold_reasons = [f"threshold: {held} deactivations (more than 1, ...)"]
    out.degraded = degraded
    out.failing_cycles = 3 if degraded else 0
    return out


def kinds(events: list[Event]) -> list[tuple[str, str]]:
    return [event.key for event in events]


# --- events from results --------------------------------------------------------------------


def test_a_held_plan_is_an_event_once_however_many_cycles_it_stays_held() -> None:
    detector = Detector(source_failed_after=3)

    first = detector.observe([result(held=5)], SOURCES)
    again = [detector.observe([result(held=5, run_id=f"run-{i}")], SOURCES) for i in range(2, 6)]

    assert kinds(first) == [("held", "ilt")]
    assert first[0].counts == {"deactivate_user": 5} and first[0].run_id == "run-1"
    assert again == [[], [], [], []]


def test_a_different_held_plan_or_one_held_again_after_it_went_is_a_new_event() -> None:
    detector = Detector(source_failed_after=3)
    detector.observe([result(held=5)], SOURCES)

    changed = detector.observe([result(held=6)], SOURCES)
    gone = detector.observe([result()], SOURCES)
    back = detector.observe([result(held=6)], SOURCES)

    assert kinds(changed) == [("held", "ilt")] and changed[0].counts == {"deactivate_user": 6}
    assert gone == []
    assert kinds(back) == [("held", "ilt")]


def test_each_target_has_its_own_held_plan() -> None:
    detector = Detector(source_failed_after=3)
    detector.observe([result("ilt", held=5), result("other")], SOURCES)

    events = detector.observe([result("ilt", held=5), result("other", held=2)], SOURCES)

    assert kinds(events) == [("held", "other")]


def test_degraded_once_when_it_begins_and_recovered_when_it_ends() -> None:
    detector = Detector(source_failed_after=3)
    seen = [
        detector.observe([result(degraded=flag)], SOURCES)
        for flag in (False, True, True, True, False, False)
    ]

    assert [kinds(events) for events in seen] == [
        [],
        [("degraded", "ilt")],
        [],
        [],
        [("recovered", "ilt")],
        [],
    ]
    assert seen[1][0].counts == {"failing_cycles": 3}


def test_a_source_failing_n_cycles_in_a_row_is_one_event_and_its_recovery_another() -> None:
    detector = Detector(source_failed_after=3)
    pattern = [("students",), ("students",), (), ("students",), ("students",), ("students",)]
    pattern += [("students",), ()]
    seen = [detector.observe([result(failed=failed)], SOURCES) for failed in pattern]

    assert [kinds(events) for events in seen] == [
        [],
        [],
        [],  # two in a row, then it worked: not three
        [],
        [],
        [("source_failed", "students")],
        [],  # still failing: told already
        [("source_recovered", "students")],
    ]
    assert seen[5][0].counts == {"cycles_failed": 3}


def test_a_source_that_recovers_before_n_failures_is_no_event() -> None:
    detector = Detector(source_failed_after=1)
    assert kinds(detector.observe([result(failed=("staff",))], SOURCES)) == [
        ("source_failed", "staff")
    ]
    assert kinds(detector.observe([result()], SOURCES)) == [("source_recovered", "staff")]
    assert detector.observe([], SOURCES) == []


# --- the rate limit -------------------------------------------------------------------------


def test_the_same_event_for_the_same_target_goes_once_per_min_interval() -> None:
    clock = Clock()
    limiter = RateLimiter(min_interval_seconds=3600, max_per_hour=100, clock=clock)
    held = Event("held", target="ilt")

    assert limiter.admit(held) is None
    clock.now += 3599
    assert limiter.admit(held) == "min_interval_seconds"
    assert limiter.admit(Event("held", target="other")) is None  # another target: its own
    assert limiter.admit(Event("degraded", target="ilt")) is None  # another event: its own
    clock.now += 1
    assert limiter.admit(held) is None


def test_at_most_max_per_hour_in_all() -> None:
    clock = Clock()
    limiter = RateLimiter(min_interval_seconds=0, max_per_hour=3, clock=clock)

    admitted = [limiter.admit(Event("held", target=f"t{i}")) for i in range(5)]
    clock.now += 3600
    later = limiter.admit(Event("held", target="t9"))

    assert admitted == [None, None, None, "max_per_hour", "max_per_hour"]
    assert later is None


def test_recovered_always_goes_after_its_degraded_was_sent() -> None:
    clock = Clock()
    limiter = RateLimiter(min_interval_seconds=3600, max_per_hour=1, clock=clock)

    assert limiter.admit(Event("degraded", target="ilt")) is None
    clock.now += 60  # the hourly cap is reached and the interval not over
    assert limiter.admit(Event("recovered", target="ilt")) is None
    # degraded again within the interval: not told, and so neither is its recovery
    assert limiter.admit(Event("degraded", target="ilt")) == "min_interval_seconds"
    assert limiter.admit(Event("recovered", target="ilt")) == "its trouble was not told"


def test_a_recovery_of_a_trouble_never_told_is_not_sent() -> None:
    limiter = RateLimiter(min_interval_seconds=0, max_per_hour=10, clock=Clock())
    assert limiter.admit(Event("source_recovered", source="staff")) is not None
    assert limiter.admit(Event("source_failed", source="staff")) is None
    assert limiter.admit(Event("source_recovered", source="staff")) is None


# --- nothing personal in reasons ------------------------------------------------------------


def known(users: int) -> Known:
    state = Known()
    for i in range(users):
        state.users[f"u{i}"] = KnownUser(f"u{i}", f"v{i}", "created", True, {"userName": f"n{i}"})
    state.groups["g"] = KnownGroup("g", "vg", "created", {}, {f"u{i}" for i in range(users)})
    return state


def every_rules_reason() -> list[str]:
    """The reason of every safety rule of planning/guard.py, as a cycle would see them."""
    state = known(100)
    leave = [Operation("deactivate_user", f"u{i}", f"v{i}", reason="left") for i in range(60)]
    protected = [Operation("delete_user", f"u{i}", f"v{i}", reason="protected") for i in range(20)]
    updates = [Operation("update_user", f"u{i}", f"v{i}", {"displayName": "x"}) for i in range(60)]
    rekey = [Operation("rekey_user", "new", "v1", previous="u1")]
    tiny = Limit(count=1, percent=1)
    rollover = RolloverHoldConfig(start="01-01", end="12-31")
    held = [
        hold_for_thresholds(Plan(leave), SafetyConfig(max_deactivations=tiny), state)[1],
        hold_for_updates(Plan(updates), tiny, state)[1],
        hold_for_newly_protected(Plan(protected), tiny, state)[1],
        hold_for_rekeys(Plan(rekey), True, {})[1],
        hold_for_rollover(
            Plan([Operation("deactivate_user", "u1", "v1", reason="left")]),
            rollover,
            datetime(2024, 6, 20, tzinfo=UTC),
        )[1],
    ]
    return [h.reason for h in held if h is not None]


def test_every_safety_rules_reason_is_understood_and_kept_as_it_is() -> None:
    reasons = every_rules_reason()
    assert len(reasons) == 5  # a guard against a rule silently holding nothing here
    for reason in reasons:
        assert safe_reason(reason, result()) == reason


def test_an_unhealthy_source_is_named_but_its_own_error_text_is_left_out() -> None:
    cycle = result(failed=("students",))
    # a source's error text may quote anything it read: here, a person's row
    cycle.source_failures[0].reason = "header lacks key; found: 200501019876;Erik;Lind"
    failed = {"students": f"failed ({cycle.source_failures[0].reason})"}
    shrunk = shrunken_sources({"staff": 10}, {"staff": 100}, 80)
    cycle.unhealthy_sources = shrunk
    _, held = hold_for_failed_sources(
        Plan([Operation("deactivate_user", "u1", "v1")]), failed | shrunk
    )
    _, rekeys = hold_for_rekeys(
        Plan([Operation("rekey_user", "n", "v", previous="o")]), False, failed
    )
    assert held is not None and rekeys is not None

    safe = safe_reason(held.reason, cycle)
    safe_rekeys = safe_reason(rekeys.reason, cycle)

    assert safe == (
        "unhealthy source: staff returned 10 persons, 100 at the last good read (below 80%); "
        "students failed"
    )
    assert safe_rekeys.startswith("unhealthy source, re-keys wait: ")
    assert "Erik" not in safe + safe_rekeys and "200501019876" not in safe + safe_rekeys


def test_a_reason_not_known_to_be_safe_is_replaced() -> None:
    assert safe_reason("erik.lind@edu.example.se was odd", result()) == GENERIC_REASON


def test_a_rejected_config_is_told_by_its_keys_not_its_problems() -> None:
    problems = [
        "targets[0].base_url: must be an http:// or https:// URL",
        "line 3, column 7: not valid YAML (mapping values are not allowed here)",
        "sources[0]: header Erik;Lind is odd",
        "something without a key",
    ]
    assert config_keys(problems) == ["line 3, column 7", "sources[0]", "targets[0].base_url"]


# --- messages -------------------------------------------------------------------------------


def test_a_held_message_says_what_where_and_why() -> None:
    event = Event(
        "held",
        target="ilt",
        counts={"deactivate_user": 60, "remove_members": 60},
        reasons=("threshold: 60 deactivations",),
        run_id="r1",
    )
    message = Message(event, host="sync01", time="2024-06-20T10:00:00+00:00")

    assert message.subject == "[connector] held back: target ilt"
    assert message.text.startswith("connector on sync01: held back: target ilt. Held back: 60 ")
    assert "connector approve --target ilt" in message.text
    payload = message.payload()
    assert payload["event"] == "held" and payload["target"] == "ilt" and payload["source"] is None
    assert payload["counts"] == {"deactivate_user": 60, "remove_members": 60}
    assert payload["reasons"] == ["threshold: 60 deactivations"]
    assert (payload["run_id"], payload["host"], payload["time"]) == ("r1", "sync01", message.time)
    assert "counts: deactivate_user 60, remove_members 60" in message.body()


def test_every_event_has_a_title_and_an_explanation() -> None:
    for kind, where in [
        ("degraded", {"target": "t"}),
        ("recovered", {"target": "t"}),
        ("config_rejected", {}),
        ("source_failed", {"source": "s"}),
        ("source_recovered", {"source": "s"}),
        ("test", {}),
    ]:
        message = Message(Event(kind, **where), host="h")
        assert kind.split("_")[0] in message.subject
        assert len(message.text) > len(message.title) + 20


# --- the config -----------------------------------------------------------------------------


def mail(**changes: object) -> dict[str, object]:
    return {
        "name": "ops",
        "host": "smtp.example.se",
        "from": "connector@example.se",
        "to": ["ops@example.se"],
        **changes,
    }


def test_a_webhook_url_must_be_https_except_to_loopback() -> None:
    assert WebhookConfig(name="h", url="https://hooks.example/T/x").secret_url()
    assert WebhookConfig(name="h", url="http://127.0.0.1:9/x").secret_url()
    with pytest.raises(ValidationError) as error:
        WebhookConfig(name="h", url="http://hooks.example/T/SECRET")
    told = "\n".join(validation_problems(error.value))  # as the loader reports it
    assert "https" in told and "SECRET" not in told
    with pytest.raises(ValidationError, match="either url or url_file"):
        WebhookConfig(name="h")


def test_mail_security_none_only_to_loopback_and_credentials_go_together() -> None:
    assert EmailConfig.model_validate(mail()).smtp_port == 587
    assert EmailConfig.model_validate(mail(security="tls")).smtp_port == 465
    assert EmailConfig.model_validate(mail(security="none", host="127.0.0.1")).smtp_port == 25
    with pytest.raises(ValidationError, match="loopback"):
        EmailConfig.model_validate(mail(security="none"))
    with pytest.raises(ValidationError, match="go together"):
        EmailConfig.model_validate(mail(username="u"))
    with pytest.raises(ValidationError, match="not an e-mail address"):
        EmailConfig.model_validate(mail(to=["ops"]))


def test_channels_choose_their_events_and_names_are_unique() -> None:
    hook = {"name": "ops", "url": "https://hooks.example/x", "events": ["held", "degraded"]}
    config = NotifyConfig.model_validate({"webhooks": [hook]})
    channel = config.channels()[0]
    assert channel.gets("held") and channel.gets("test") and not channel.gets("recovered")
    assert NotifyConfig.model_validate({"email": [mail()]}).email[0].gets("source_recovered")
    with pytest.raises(ValidationError, match="unique"):
        NotifyConfig.model_validate({"webhooks": [hook], "email": [mail()]})
    with pytest.raises(ValidationError):
        NotifyConfig.model_validate({"webhooks": [{**hook, "events": ["sometimes"]}]})


def test_the_examples_commented_channels_are_valid_when_uncommented() -> None:
    text = (REPO / "config" / "example.yaml").read_text(encoding="utf-8")
    section = text[text.index("\nnotify:\n") : text.index("\nlogging:\n")]
    lines = []
    for line in section.splitlines():
        if line.startswith(("  # - ", "  #   ")):
            line = "  " + line[4:]  # one level of comment off: the entry's own comments stay
        lines.append(line.replace(": []", ":"))
    raw = yaml.safe_load("\n".join(lines).replace("${NOTIFY_WEBHOOK_URL}", "https://h.example/x"))
    config = NotifyConfig.model_validate(raw["notify"])
    assert [c.name for c in config.channels()] == ["teams", "it-drift"]
    assert config.email[0].username == "connector" and config.email[0].smtp_port == 587
