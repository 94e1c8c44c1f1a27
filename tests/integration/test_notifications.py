"""Notifications end to end: a held plan told once by a real daemon to a real webhook receiver
and a real SMTP server, and nothing about a person in what a held plan or a degraded vendor
sends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.config import load_config
from connector.cycle.run import Options, run_cycle
from connector.demo.localscim import free_port
from connector.service.notify import Message
from connector.service.notify.events import Detector, Event
from connector.state.store import StateStore
from connector.targets import build_targets
from tests.fakes.smtp import PASSWORD, USER, SmtpServer
from tests.fakes.webhook import WebhookReceiver
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN
from tests.support.workspace import Workspace

TOKEN = "hook-token-5a1f"
GIVEN = ["Åsa", "Erik", "Märta", "Nils", "Sven", "Ebba", "Olof", "Karin", "Linnea", "Ture"]
FAMILY = [
    "Öberg",
    "Lind",
    "Sjöberg",
    "Holm",
    "Berg",
    "Ekman",
    "Strand",
    "Dahl",
    "Nyström",
    "Wikström",
]


def roster(count: int) -> list[list[str]]:
    """Students with personnummer as their key, real-looking names and e-mail addresses."""
    rows = []
    for i in range(count):
        given, family = GIVEN[i % 10], f"{FAMILY[i % 10]}{'son' * (i // 10)}"
        key = f"20080{i % 9 + 1}0{i % 9 + 1}{1000 + i}"
        email = f"{given.lower()}.{family.lower()}{i}@edu.kommun.example.se"
        rows.append(student(key, given, family, email=email))
    return rows


def personal(rows: list[list[str]]) -> set[str]:
    """What must never be in a notification: keys (personnummer), names, e-mails (= userNames)."""
    found: set[str] = set()
    for row in rows:
        key, given, family, email = row[:4]
        found |= {key, key[2:], given, family, email, email.split("@")[0]}
    return found


def leaks(texts: list[str], rows: list[list[str]]) -> list[str]:
    return sorted(word for word in personal(rows) if any(word in text for text in texts))


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with SmtpServer(tmp_path / "smtp") as server:
        yield server


@pytest.fixture
def hook(tmp_path: Path) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(tmp_path / "hook") as receiver:
        yield receiver


def shrinking_workspace(tmp_path: Path, scim_url: str) -> Workspace:
    """20 students synced; then 10 of them gone, past a threshold of 2 and 10%."""
    workspace = Workspace(tmp_path, scim_url)
    workspace.overrides["safety"] = {
        "min_source_percent": 0,
        "max_deactivations": {"count": 2, "percent": 10},
    }
    workspace.students(roster(20))
    assert workspace.sync().exit_code == 0
    workspace.students(roster(10))
    return workspace


def test_a_held_plan_is_told_once_by_webhook_and_mail_with_nothing_personal(
    tmp_path: Path, scim_url: str, hook: WebhookReceiver, smtp: SmtpServer
) -> None:
    workspace = shrinking_workspace(tmp_path, scim_url)
    workspace.overrides["daemon"] = {"interval_seconds": 1, "shutdown_timeout_seconds": 10}
    workspace.overrides["notify"] = {
        "webhooks": [{"name": "teams", "url": "${TEST_HOOK_URL}"}],
        "email": [
            {
                "name": "drift",
                "host": "127.0.0.1",
                "port": smtp.port,
                "from": "connector@kommun.example.se",
                "to": ["it-drift@kommun.example.se"],
                "username": USER,
                "password": "${TEST_SMTP_PASSWORD}",
                "ca_file": str(smtp.ca_file),
            }
        ],
    }
    workspace.write_config()
    env = {
        "TEST_SCIM_TOKEN": SCIM_TOKEN,
        "TEST_HOOK_URL": hook.url(f"/hooks/{TOKEN}"),
        "TEST_SMTP_PASSWORD": PASSWORD,
    }
    daemon = DaemonProcess(workspace, env)
    try:
        wait_for(
            lambda: (
                sum(
                    1
                    for e in daemon.events()
                    if e["event"] == "sync.finished" and e["outcome"] == "held"
                )
                >= 4
            ),
            timeout=60,
            what="four cycles holding the same plan",
        )
        wait_for(lambda: daemon.count("notify.sent") >= 2, what="the notifications sent")
        workspace.overrides["daemon"] = {"interval_seconds": 0}  # invalid: rejected on reload
        workspace.write_config()
        wait_for(lambda: daemon.count("notify.sent") >= 4, what="config_rejected sent")
    finally:
        assert daemon.stop() == 0

    assert [body["event"] for body in hook.bodies] == ["held", "config_rejected"]
    body, rejected = hook.bodies
    assert rejected["reasons"] == ["daemon.interval_seconds"]
    assert rejected["counts"] == {"problems": 1}
    assert body["target"] == "default" and body["counts"]["deactivate_user"] == 10
    assert body["reasons"][0].startswith("threshold: 10 deactivations")
    mail, _ = smtp.messages
    assert [m["Subject"] for m in smtp.messages] == [
        "[connector] held back: target default",
        "[connector] config rejected",
    ]
    assert "deactivate user" in mail.get_content()
    texts = [json.dumps(body, ensure_ascii=False), mail.get_content(), str(mail["Subject"])]
    assert leaks(texts, roster(20)) == []
    sent = [e for e in daemon.events() if e["event"] == "notify.sent"]
    assert sorted((e["kind"], e["notification"]) for e in sent) == [
        ("email", "config_rejected"),
        ("email", "held"),
        ("webhook", "config_rejected"),
        ("webhook", "held"),
    ]
    assert TOKEN not in "\n".join(daemon.lines()) and PASSWORD not in "\n".join(daemon.lines())


def cycle(workspace: Workspace, detector: Detector, **options: Any) -> list[Event]:
    config = load_config(workspace.write_config())
    targets = build_targets(config)
    state = StateStore.open(config.state.path)
    try:
        results = run_cycle(config, targets, state, Options(**options))
    finally:
        state.close()
        for target in targets:
            target.close()
    return detector.observe(results, [s.name for s in config.sources])


def test_held_and_degraded_payloads_carry_nothing_about_a_person(
    tmp_path: Path, scim_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SCIM_TOKEN", SCIM_TOKEN)
    workspace = shrinking_workspace(tmp_path, scim_url)
    detector = Detector(source_failed_after=1)

    held = cycle(workspace, detector)
    workspace.overrides["vendor"] = {
        **workspace.config()["vendor"],
        "base_url": f"http://127.0.0.1:{free_port()}/scim/v2",  # nobody listens
    }
    workspace.overrides["safety"] |= {"degraded_after_cycles": 1}
    degraded = cycle(workspace, detector, full=True)

    assert [e.kind for e in held] == ["held"]
    assert [e.kind for e in degraded] == ["degraded"]
    messages = [Message(event) for event in held + degraded]
    texts = [json.dumps(m.payload(), ensure_ascii=False) + m.body() + m.subject for m in messages]
    assert leaks(texts, roster(20)) == []
    assert "10 deactivate user" in texts[0] and "failing_cycles" in texts[1]
