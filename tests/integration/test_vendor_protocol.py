"""How the connector talks to the vendor: ETags, secrets, TLS."""

from __future__ import annotations

import logging

import pytest

from connector.targets.scim.client import ScimClient, ScimError
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN, ScimPeek
from tests.support.workspace import Workspace

A = "11111111"


def test_if_match_conflict_rereads_and_replans(workspace: Workspace, peek: ScimPeek) -> None:
    workspace.students([student("E1", "Åsa", "Öberg", A), student("E2", "Erik", "Lind", A)])
    workspace.sync()
    account = peek.users()["e1@edu.example.se"]
    # Someone changes the account at the vendor: its version moves on.
    peek.set_vendor_attribute(account["id"], **{"title": "Talboksrätt", "name.familyName": "Hand"})

    workspace.students([student("E1", "Åsa-Maria", "Öberg", A), student("E2", "Erik", "Lind", A)])
    result = workspace.sync()

    assert result.exit_code == 0, result.stdout
    assert result.event("apply.replanned")["why"] == "changed at the vendor"
    after = peek.users()["e1@edu.example.se"]
    assert after["id"] == account["id"]
    assert after["name"]["givenName"] == "Åsa-Maria"
    assert (
        after["name"]["familyName"] == "Öberg"
    )  # the hand change of a managed attribute is repaired
    assert after["title"] == "Talboksrätt"  # an attribute the mapping does not manage is kept
    requests = result.event("sync.finished")["requests"]
    assert requests["PATCH"] == 2  # the refused one and the re-planned one


def test_token_is_never_in_logs_or_exceptions(
    scim_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    errors = []
    with ScimClient(scim_url, SCIM_TOKEN, max_retries=0) as client:
        client.search("Users", 'userName eq "nobody"')
        for call in (
            lambda: client.get("Users", "missing"),
            lambda: client.delete("Users", "missing"),
        ):
            with pytest.raises(ScimError) as raised:
                call()
            errors.append(raised.value)
    with (
        ScimClient(scim_url, "wrong-" + SCIM_TOKEN, max_retries=0) as client,
        pytest.raises(ScimError) as raised,
    ):
        client.search("Users", 'userName eq "nobody"')
    errors.append(raised.value)

    assert caplog.records, "httpx debug logging was captured"
    assert errors[-1].status == 401
    for text in (
        [r.getMessage() for r in caplog.records]
        + [str(e) for e in errors]
        + [repr(e) for e in errors]
    ):
        assert SCIM_TOKEN not in text


def test_turning_tls_verification_off_warns_at_every_start(workspace: Workspace) -> None:
    workspace.students([student("E1", "Åsa", "Öberg", A)])
    workspace.overrides["vendor"] = {**workspace.config()["vendor"], "verify_tls": False}

    for _ in range(2):
        result = workspace.sync()
        assert result.event("tls.verification_disabled")["level"] == "warning"


def test_tls_is_verified_by_default(workspace: Workspace) -> None:
    workspace.students([student("E1", "Åsa", "Öberg", A)])
    result = workspace.sync()
    assert "tls.verification_disabled" not in result.stderr
