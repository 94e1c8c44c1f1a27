"""A SCIM vendor behind a real TLS terminator (stunnel) that demands a client certificate, as
an EGIL or SCIM vendor under federated mutual TLS does: the real scim2-server behind it. With
the municipality's client certificate and the server's key pinned, the sync goes through;
without the certificate the handshake is refused; with a pin the server's key does not match,
not one byte reaches the vendor."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme

from connector.demo.localscim import LocalScimServer
from connector.targets.tls import spki_pin
from tests.fakes.stunnel import Stunnel, StunnelError
from tests.support.rosters import student
from tests.support.scim import ScimPeek
from tests.support.servers import missing_server
from tests.support.workspace import Workspace

A = "11111111"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """The terminator's certificate, the CA both sides trust, and the connector's client pair."""
    ca = trustme.CA()
    folder = tmp_path / "pki"
    folder.mkdir()
    paths = {n: folder / f"{n}.pem" for n in ("ca", "server", "server-key", "client", "client-key")}
    ca.cert_pem.write_to_path(paths["ca"])
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(paths["server"])
    server.private_key_pem.write_to_path(paths["server-key"])
    client = ca.issue_cert("connector.kommun.example")
    client.cert_chain_pems[0].write_to_path(paths["client"])
    client.private_key_pem.write_to_path(paths["client-key"])
    return paths


@pytest.fixture
def terminator(
    tmp_path: Path, pki: dict[str, Path], scim_server: LocalScimServer, scim_url: str
) -> Iterator[Stunnel]:
    backend = urlsplit(scim_url).port
    assert backend is not None
    tunnel = Stunnel(tmp_path / "stunnel", backend, pki["server"], pki["server-key"], pki["ca"])
    try:
        tunnel.start()
    except StunnelError as exc:
        missing_server(str(exc))
    try:
        yield tunnel
    finally:
        tunnel.stop()


def workspace_for(
    tmp_path: Path, tunnel: Stunnel, scim_url: str, pki: dict[str, Path], tls: dict[str, Any]
) -> Workspace:
    path = urlsplit(scim_url).path
    workspace = Workspace(tmp_path, f"https://127.0.0.1:{tunnel.port}{path}")
    vendor = workspace.config()["vendor"]
    workspace.overrides["vendor"] = {**vendor, "ca_file": str(pki["ca"]), "tls": tls}
    workspace.students([student("E1", "Åsa", "Öberg", A), student("E2", "Bo", "Ek", A)])
    return workspace


def pin_of(certificate: Path) -> str:
    return "sha256//" + spki_pin(ssl.PEM_cert_to_DER_cert(certificate.read_text()))


def client_pair(pki: dict[str, Path]) -> dict[str, str]:
    return {"client_cert_file": str(pki["client"]), "client_key_file": str(pki["client-key"])}


def test_with_the_client_certificate_and_the_pin_the_sync_goes_through(
    tmp_path: Path, terminator: Stunnel, scim_url: str, pki: dict[str, Path]
) -> None:
    tls = {**client_pair(pki), "server_pins": [pin_of(pki["server"])]}
    workspace = workspace_for(tmp_path, terminator, scim_url, pki, tls)

    result = workspace.sync()
    checked = workspace.run("check")

    assert result.exit_code == 0, result.stdout + result.stderr
    with ScimPeek(scim_url) as peek:
        assert set(peek.users()) == {"e1@edu.example.se", "e2@edu.example.se"}
    assert checked.exit_code == 0, checked.stdout
    assert "client certificate sent" in checked.stdout and "pin" in checked.stdout


def test_without_a_client_certificate_the_terminator_refuses_and_nothing_arrives(
    tmp_path: Path, terminator: Stunnel, scim_url: str, pki: dict[str, Path]
) -> None:
    workspace = workspace_for(tmp_path, terminator, scim_url, pki, {})

    result = workspace.sync()

    assert result.exit_code == 1, result.stdout
    assert "TLS failed" in result.event("apply.vendor_failed")["error"]
    assert set(terminator.bytes_forwarded()) <= {0}
    with ScimPeek(scim_url) as peek:
        assert peek.list("Users") == []


def test_a_server_key_that_matches_no_pin_is_sent_nothing(
    tmp_path: Path, terminator: Stunnel, scim_url: str, pki: dict[str, Path]
) -> None:
    other = trustme.CA().issue_cert("127.0.0.1")
    stranger = tmp_path / "stranger.pem"
    other.cert_chain_pems[0].write_to_path(stranger)
    tls = {**client_pair(pki), "server_pins": [pin_of(stranger)]}
    workspace = workspace_for(tmp_path, terminator, scim_url, pki, tls)

    result = workspace.sync()

    assert result.exit_code == 1, result.stdout
    assert "pin" in result.event("apply.vendor_failed")["error"]
    assert terminator.bytes_forwarded() and set(terminator.bytes_forwarded()) == {0}
    with ScimPeek(scim_url) as peek:
        assert peek.list("Users") == []
