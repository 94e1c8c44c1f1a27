"""The vendor over HTTPS: its certificate is checked by default, against the system's trust
store or the configured CA file; a wrong one stops the cycle before anything is sent.

The vendor is scim2-server behind the test proxy serving TLS with a certificate from a
throw-away CA (trustme); the proxy injects no faults here.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from connector.demo.localscim import LocalScimServer
from tests.fakes.faultproxy import FaultProxy
from tests.support.rosters import student
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

A = "11111111"


@pytest.fixture
def https_vendor(
    tmp_path: Path, scim_server: LocalScimServer, scim_url: str
) -> Iterator[tuple[Workspace, Path, Path]]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "vendor-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    wrong_ca_file = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong_ca_file))
    with FaultProxy(scim_server.root, tls=context) as proxy:
        workspace = Workspace(tmp_path, proxy.url_for(scim_url))
        workspace.students([student("E1", "Åsa", "Öberg", A)])
        assert workspace.scim_url.startswith("https://")
        yield workspace, ca_file, wrong_ca_file


def vendor(workspace: Workspace, **settings: Any) -> None:
    workspace.overrides["vendor"] = {**workspace.config()["vendor"], **settings}


def test_the_vendors_ca_file_lets_the_sync_through(
    https_vendor: tuple[Workspace, Path, Path], scim_url: str
) -> None:
    workspace, ca_file, _ = https_vendor
    vendor(workspace, ca_file=str(ca_file))

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout
    assert "tls.verification_disabled" not in result.stderr
    with ScimPeek(scim_url) as peek:
        assert set(peek.users()) == {"e1@edu.example.se"}


@pytest.mark.parametrize("trust", ["system", "wrong CA"])
def test_a_certificate_that_is_not_trusted_stops_the_cycle_before_anything_is_sent(
    trust: str, https_vendor: tuple[Workspace, Path, Path], scim_url: str
) -> None:
    workspace, _, wrong_ca_file = https_vendor
    if trust == "wrong CA":
        vendor(workspace, ca_file=str(wrong_ca_file))

    result = workspace.sync()
    checked = workspace.run("check")

    assert result.exit_code == 1, result.stdout
    refused = result.event("apply.vendor_failed")
    assert "TLS failed" in refused["error"] and "CERTIFICATE_VERIFY_FAILED" in refused["error"]
    assert checked.exit_code == 1 and "FAIL  vendor" in checked.stdout
    assert "CERTIFICATE_VERIFY_FAILED" in checked.stdout
    with ScimPeek(scim_url) as peek:
        assert peek.list("Users") == []


def test_turning_verification_off_works_and_warns(
    https_vendor: tuple[Workspace, Path, Path],
) -> None:
    workspace, _, _ = https_vendor
    vendor(workspace, verify_tls=False)

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout
    assert result.event("tls.verification_disabled")["level"] == "warning"
