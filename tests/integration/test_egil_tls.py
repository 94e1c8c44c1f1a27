"""An EGIL target over federated mutual TLS, against the faithful EGIL server demanding a
client certificate: with the certificate the sync goes through; without it, or with the
server's key not the pinned one, or with federation metadata that does not verify, NOTHING is
sent - the server sees no request at all."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from connector.targets.tls import spki_pin
from tests.fakes.egil import EgilServer, EgilServerTLS
from tests.fakes.federation import MetadataServer, metadata, signed, signing_key, write_jwks
from tests.support.egil import API_KEY, EgilWorkspace
from tests.support.rosters import staff, student

NORR = "11111111"
ENTITY = "https://egil.laromedel.example"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def files(ca: trustme.CA, tmp_path: Path) -> dict[str, Path]:
    """The server's certificate, the CA both sides trust, and the connector's client pair."""
    folder = tmp_path / "tls"
    folder.mkdir()
    paths = {name: folder / f"{name}.pem" for name in ("ca", "server", "server-key")}
    ca.cert_pem.write_to_path(paths["ca"])
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(paths["server"])
    server.private_key_pem.write_to_path(paths["server-key"])
    client = ca.issue_cert("connector.kommun.example")
    paths["client"], paths["client-key"] = folder / "client.pem", folder / "client-key.pem"
    client.cert_chain_pems[0].write_to_path(paths["client"])
    client.private_key_pem.write_to_path(paths["client-key"])
    return paths


@pytest.fixture
def server(files: dict[str, Path]) -> Iterator[EgilServer]:
    tls = EgilServerTLS(files["server"], files["server-key"], client_ca_file=files["ca"])
    with EgilServer(tls=tls, api_key=API_KEY) as running:
        yield running


def server_pin(files: dict[str, Path]) -> str:
    der = ssl.PEM_cert_to_DER_cert(files["server"].read_text())
    return spki_pin(der)


def workspace_for(
    root: Path, server: EgilServer, files: dict[str, Path], tls: dict[str, Any]
) -> EgilWorkspace:
    workspace = EgilWorkspace(root, server.url)
    workspace.target["ca_file"] = str(files["ca"])
    workspace.target["tls"] = tls
    workspace.students([student("S1", "Anna", "Ek", NORR, klass="7A")])
    workspace.staff([staff("T1", "Lena", "Lund", NORR, "Lärare")])
    return workspace


def client_pair(files: dict[str, Path]) -> dict[str, Any]:
    return {"client_cert_file": str(files["client"]), "client_key_file": str(files["client-key"])}


def test_with_the_client_certificate_and_the_right_pin_the_sync_goes_through(
    tmp_path: Path, server: EgilServer, files: dict[str, Path]
) -> None:
    tls = {**client_pair(files), "server_pins": [f"sha256//{server_pin(files)}"]}
    workspace = workspace_for(tmp_path, server, files, tls)

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    assert len(server.objects("Users")) == 2 and server.rejected == []  # a student, a teacher


def test_without_a_client_certificate_the_server_refuses_the_handshake(
    tmp_path: Path, server: EgilServer, files: dict[str, Path]
) -> None:
    workspace = workspace_for(tmp_path, server, files, {})

    result = workspace.sync()

    assert result.exit_code != 0
    assert server.requests == []
    assert server.objects("Users") == {}


def test_a_wrong_server_key_pin_sends_nothing(
    tmp_path: Path, server: EgilServer, files: dict[str, Path]
) -> None:
    other = trustme.CA().issue_cert("127.0.0.1")
    wrong = spki_pin(ssl.PEM_cert_to_DER_cert(other.cert_chain_pems[0].bytes().decode()))
    workspace = workspace_for(
        tmp_path, server, files, {**client_pair(files), "server_pins": [wrong]}
    )

    result = workspace.sync()

    assert result.exit_code != 0
    assert "pin" in result.stdout + result.stderr
    assert server.requests == []  # not even the request line reached it


def federation_tls(
    files: dict[str, Path], metadata_url: str, jwks: Path, cache: Path
) -> dict[str, Any]:
    return {
        **client_pair(files),
        "federation": {
            "metadata_url": metadata_url,
            "jwks_file": str(jwks),
            "entity_id": ENTITY,
            "ca_file": str(files["ca"]),
            "cache_file": str(cache),
        },
    }


def test_pins_from_verified_federation_metadata_and_its_cached_copy(
    tmp_path: Path, ca: trustme.CA, server: EgilServer, files: dict[str, Path]
) -> None:
    key = signing_key()
    jwks = write_jwks(tmp_path / "federation.jwks", key)
    cache = tmp_path / "metadata-cache.jws"
    with MetadataServer(ca) as publisher:
        publisher.document = signed(metadata(ENTITY, server.url, [server_pin(files)]), key)
        tls = federation_tls(files, publisher.url, jwks, cache)
        workspace = workspace_for(tmp_path, server, files, tls)

        first = workspace.sync()
        assert first.exit_code == 0, first.stdout + first.stderr
        assert publisher.fetches == 1 and cache.stat().st_mode & 0o777 == 0o600

        publisher.up = False  # the publisher is down: the verified copy still serves
        workspace.staff(
            [staff("T1", "Lena", "Lund", NORR, "Lärare"), staff("T2", "Per", "Ros", NORR, "Lärare")]
        )
        second = workspace.sync()
        assert second.exit_code == 0, second.stdout + second.stderr
        assert len(server.objects("Users")) == 3  # the student, two teachers


@pytest.mark.parametrize("trouble", ["stranger's signature", "expired", "not listed"])
def test_metadata_that_does_not_verify_sends_nothing(
    tmp_path: Path, ca: trustme.CA, server: EgilServer, files: dict[str, Path], trouble: str
) -> None:
    key = signing_key()
    jwks = write_jwks(tmp_path / "federation.jwks", key)
    pins = [server_pin(files)]
    with MetadataServer(ca) as publisher:
        if trouble == "stranger's signature":
            document = signed(metadata(ENTITY, server.url, pins), signing_key("federation-2026"))
        elif trouble == "expired":
            document = signed(metadata(ENTITY, server.url, pins, expires_in=-60), key)
        else:
            document = signed(metadata("https://someone.else", server.url, pins), key)
        publisher.document = document
        tls = federation_tls(files, publisher.url, jwks, tmp_path / "cache.jws")
        workspace = workspace_for(tmp_path, server, files, tls)

        result = workspace.sync()

    assert result.exit_code != 0
    assert "federation metadata" in result.stdout + result.stderr
    assert server.requests == []
    if trouble != "not listed":  # a document that does not verify is never kept
        assert not (tmp_path / "cache.jws").exists()


def test_check_says_the_pin_matched_or_why_not(
    tmp_path: Path, server: EgilServer, files: dict[str, Path]
) -> None:
    tls = {**client_pair(files), "server_pins": [server_pin(files)]}
    (tmp_path / "right").mkdir()
    (tmp_path / "wrong").mkdir()
    right = workspace_for(tmp_path / "right", server, files, tls)

    good = right.run("check")

    assert "client certificate sent; server key matched the pin" in good.stdout
    wrong = workspace_for(
        tmp_path / "wrong", server, files, {**client_pair(files), "server_pins": ["A" * 43 + "="]}
    )
    bad = wrong.run("check")
    assert bad.exit_code != 0 and "is not the pinned" in bad.stdout + bad.stderr
