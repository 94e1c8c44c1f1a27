"""Notifications delivered to real servers: an SMTP server (aiosmtpd) with STARTTLS and AUTH,
and an HTTP(S) webhook receiver (http.server) - each with a throw-away CA (trustme)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from connector.config.notify import EmailConfig, NotifyConfig, WebhookConfig
from connector.demo.localscim import free_port
from connector.service.notify import Event, Message, Notifier, deliver
from connector.service.notify.mail import EmailChannel
from connector.service.notify.webhook import WebhookChannel
from tests.fakes.smtp import PASSWORD, USER, SmtpServer
from tests.fakes.webhook import WebhookReceiver
from tests.support.daemon import wait_for
from tests.support.workspace import Workspace

TOKEN = "T0KEN-b7e2-in-the-url"
HELD = Event(
    "held",
    target="ilt",
    counts={"deactivate_user": 60},
    reasons=("threshold: 60 deactivations",),
    run_id="run-42",
)


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with SmtpServer(tmp_path / "smtp") as server:
        yield server


@pytest.fixture
def hook(tmp_path: Path) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(tmp_path / "hook") as receiver:
        yield receiver


def mail_config(server: SmtpServer, **changes: Any) -> EmailConfig:
    return EmailConfig.model_validate(
        {
            "name": "ops",
            "host": "127.0.0.1",
            "port": server.port,
            "from": "connector@kommun.example.se",
            "to": ["it-drift@kommun.example.se", "skolit@kommun.example.se"],
            "username": USER,
            "password": PASSWORD,
            "ca_file": str(server.ca_file),
            "timeout_seconds": 5,
            **changes,
        }
    )


def sent(channel: Any, event: Event = HELD) -> tuple[str | None, list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as logs:
        why_not = deliver(channel, Message(event, host="sync01"), delays=(0.05, 0.05))
    return why_not, logs


# --- e-mail ---------------------------------------------------------------------------------


def test_mail_goes_over_starttls_with_auth_and_says_what_was_held(smtp: SmtpServer) -> None:
    why_not, logs = sent(EmailChannel(mail_config(smtp)))

    assert why_not is None
    (mail,) = smtp.messages
    assert mail["Subject"] == "[connector] held back: target ilt"
    assert mail["From"] == "connector@kommun.example.se"
    assert mail["To"] == "it-drift@kommun.example.se, skolit@kommun.example.se"
    body = mail.get_content()
    assert body.startswith("connector on sync01: held back: target ilt. Held back: 60 deactivate")
    assert "reasons: threshold: 60 deactivations" in body and "run_id: run-42" in body
    assert smtp.inbox.logins == [USER]
    assert smtp.inbox.envelopes[0][1] == ["it-drift@kommun.example.se", "skolit@kommun.example.se"]
    assert [(e["event"], e["kind"], e["notification"]) for e in logs] == [
        ("notify.sent", "email", "held")
    ]


def test_a_wrong_password_is_a_clear_failure_without_the_password(smtp: SmtpServer) -> None:
    wrong = "wrong-password-3e8d"
    why_not, logs = sent(EmailChannel(mail_config(smtp, password=wrong)))

    assert why_not is not None and why_not.startswith("authentication failed: 535")
    # one connection (smtplib tries PLAIN, then LOGIN): a refused login is not retried
    assert smtp.messages == [] and smtp.inbox.refused_logins in (1, 2)
    (failed,) = logs
    assert failed["event"] == "notify.failed" and failed["attempts"] == 1
    assert failed["error"] == why_not
    assert wrong not in repr(logs) and PASSWORD not in repr(logs)


def test_a_server_without_starttls_is_refused(tmp_path: Path) -> None:
    with SmtpServer(tmp_path / "plain", tls=False) as plain:
        config = mail_config(plain, username=None, password=None, ca_file=None)
        why_not, logs = sent(EmailChannel(config))
        assert plain.messages == []
    assert why_not == "the server does not offer STARTTLS (security: starttls)"
    assert [e["event"] for e in logs] == ["notify.failed"]


def test_a_certificate_from_another_ca_is_refused(tmp_path: Path, smtp: SmtpServer) -> None:
    with SmtpServer(tmp_path / "other") as other:  # its CA never signed smtp's certificate
        why_not, _ = sent(EmailChannel(mail_config(smtp, ca_file=str(other.ca_file))))
    assert why_not is not None and why_not.startswith("TLS: ")
    assert smtp.messages == [] and smtp.inbox.logins == []


# --- webhooks -------------------------------------------------------------------------------


def test_a_webhook_gets_a_json_post_with_text_and_fields(hook: WebhookReceiver) -> None:
    channel = WebhookChannel(WebhookConfig(name="teams", url=hook.url(f"/hooks/{TOKEN}")))

    why_not, logs = sent(channel)

    assert why_not is None
    ((path, body),) = hook.requests
    assert path == f"/hooks/{TOKEN}"
    assert body["text"].startswith("connector on sync01: held back: target ilt.")
    assert {k: body[k] for k in ("event", "target", "source", "counts", "reasons", "run_id")} == {
        "event": "held",
        "target": "ilt",
        "source": None,
        "counts": {"deactivate_user": 60},
        "reasons": ["threshold: 60 deactivations"],
        "run_id": "run-42",
    }
    assert body["host"] == "sync01" and body["time"].endswith("+00:00")
    assert [(e["event"], e["channel"], e["kind"]) for e in logs] == [
        ("notify.sent", "teams", "webhook")
    ]
    assert TOKEN not in repr(logs)


def test_https_is_verified_against_ca_file(tmp_path: Path) -> None:
    with WebhookReceiver(tmp_path / "tls", tls=True) as tls:
        url = tls.url(f"/hooks/{TOKEN}")
        trusted = WebhookConfig(name="h", url=url, ca_file=tls.ca_file)
        assert sent(WebhookChannel(trusted))[0] is None
        untrusted, logs = sent(WebhookChannel(WebhookConfig(name="h", url=url)))
        assert len(tls.requests) == 1
    assert untrusted is not None and "CERTIFICATE_VERIFY_FAILED" in untrusted
    assert TOKEN not in repr(logs)


def test_a_500_is_retried_then_reported_without_the_token(tmp_path: Path) -> None:
    with WebhookReceiver(tmp_path / "down", statuses=[500, 500, 500]) as down:
        why_not, logs = sent(WebhookChannel(WebhookConfig(name="h", url=down.url(f"/{TOKEN}"))))
        assert len(down.requests) == 3
    assert why_not == "HTTP 500"
    (failed,) = logs
    assert (failed["event"], failed["attempts"], failed["error"]) == (
        "notify.failed",
        3,
        "HTTP 500",
    )


def test_a_transient_500_then_success_is_sent(tmp_path: Path) -> None:
    with WebhookReceiver(tmp_path / "flaky", statuses=[503]) as flaky:
        why_not, logs = sent(WebhookChannel(WebhookConfig(name="h", url=flaky.url("/x"))))
        assert len(flaky.requests) == 2
    assert why_not is None and logs[0]["attempts"] == 2


def test_a_4xx_is_not_retried(tmp_path: Path) -> None:
    with WebhookReceiver(tmp_path / "gone", statuses=[404]) as gone:
        why_not, logs = sent(WebhookChannel(WebhookConfig(name="h", url=gone.url(f"/{TOKEN}"))))
        assert len(gone.requests) == 1
    assert why_not == "HTTP 404" and logs[0]["attempts"] == 1


def test_nothing_listening_is_retried_and_its_error_names_no_token() -> None:
    url = f"http://127.0.0.1:{free_port()}/services/{TOKEN}?key={TOKEN}"
    why_not, logs = sent(WebhookChannel(WebhookConfig(name="h", url=url)))
    assert why_not is not None and logs[0]["attempts"] == 3
    assert TOKEN not in why_not and TOKEN not in repr(logs)


# --- the notifier: queued, rate-limited, flushed on close -----------------------------------


def test_the_notifier_sends_off_the_calling_thread_once_per_interval(
    hook: WebhookReceiver, smtp: SmtpServer
) -> None:
    config = NotifyConfig.model_validate(
        {
            "webhooks": [{"name": "teams", "url": hook.url(f"/{TOKEN}"), "events": ["held"]}],
            "email": [mail_config(smtp).model_dump(by_alias=True) | {"events": ["degraded"]}],
        }
    )
    notifier = Notifier(config, retry_delays=(0.05,))
    for _ in range(3):
        notifier.notify(HELD)
    notifier.notify(Event("degraded", target="ilt", counts={"failing_cycles": 3}))
    notifier.close(grace_seconds=10)

    assert [body["event"] for body in hook.bodies] == ["held"]
    assert [mail["Subject"] for mail in smtp.messages] == ["[connector] degraded: target ilt"]


def test_notify_test_sends_to_each_channel_and_check_lists_them(
    tmp_path: Path, scim_url: str, hook: WebhookReceiver, smtp: SmtpServer
) -> None:
    workspace = Workspace(tmp_path, scim_url)
    workspace.students([])
    url_file = tmp_path / "hook-url"
    url_file.write_text(hook.url(f"/hooks/{TOKEN}") + "\n")
    mail = mail_config(smtp).model_dump(by_alias=True, exclude={"password"}, mode="json")
    workspace.overrides["notify"] = {
        "webhooks": [{"name": "teams", "url_file": str(url_file)}],
        "email": [mail | {"password": "${TEST_SMTP_PASSWORD}"}],
    }
    workspace.environment["TEST_SMTP_PASSWORD"] = PASSWORD

    tested = workspace.run("notify", "test")
    checked = workspace.run("check")

    assert tested.exit_code == 0, tested.stdout + tested.stderr
    assert "ok    webhook teams: test message sent" in tested.stdout
    assert "ok    email ops: test message sent" in tested.stdout
    assert [body["event"] for body in hook.bodies] == ["test"]
    assert [m["Subject"] for m in smtp.messages] == ["[connector] test message"]
    port = hook.url("").rsplit(":", 1)[1]
    assert f"ok    notify webhook teams: http://127.0.0.1:{port}; events: held," in checked.stdout
    assert f"ok    notify email ops: 127.0.0.1:{smtp.port} (starttls), to 2" in checked.stdout
    everything = tested.stdout + tested.stderr + checked.stdout + checked.stderr
    assert TOKEN not in everything and PASSWORD not in everything
    wait_for(lambda: len(hook.bodies) == 1, what="no more posts")
    assert json.dumps(hook.bodies).count(TOKEN) == 0
