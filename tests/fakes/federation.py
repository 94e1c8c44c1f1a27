"""A federation's metadata publisher for the tests (FedTLS, as Skolfederation publishes its
metadata): a JWS-signed JSON document listing entities, their servers' base URIs and key pins,
served over HTTPS from loopback; the federation's signing keys as a JWKS file.

The tests sign documents with a key of their own (a real EC P-256 JWK) - and with a stranger's
key, or already expired, to see the connector fail closed.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
from jwcrypto import jwk, jws


def signing_key(kid: str = "federation-2026") -> jwk.JWK:
    return jwk.JWK.generate(kty="EC", crv="P-256", kid=kid)


def write_jwks(path: Path, *keys: jwk.JWK) -> Path:
    keyset = jwk.JWKSet()
    for key in keys:
        keyset.add(jwk.JWK(**key.export_public(as_dict=True)))
    path.write_text(keyset.export(private_keys=False), encoding="utf-8")
    return path


def metadata(
    entity_id: str, base_uri: str, pins: list[str], *, expires_in: float = 3600
) -> dict[str, Any]:
    now = int(time.time())
    return {
        "version": "1.0.0",
        "iat": now,
        "exp": now + int(expires_in),
        "entities": [
            {"entity_id": "https://other.example", "servers": []},
            {
                "entity_id": entity_id,
                "organization": "Läromedel AB",
                "servers": [
                    {
                        "base_uri": base_uri,
                        "pins": [{"alg": "sha256", "digest": pin} for pin in pins],
                    }
                ],
            },
        ],
    }


def signed(document: dict[str, Any], key: jwk.JWK) -> str:
    """JWS JSON serialization (flattened), as FedTLS metadata is published."""
    token = jws.JWS(json.dumps(document).encode())
    token.add_signature(
        key, alg="ES256", protected=json.dumps({"alg": "ES256", "kid": key.get("kid")})
    )
    return str(token.serialize(compact=False))


class MetadataServer:
    """Serves `document` (a signed string) at /metadata.jws over HTTPS; `up` can be cleared to
    answer 503, as a publisher that is down."""

    def __init__(self, ca: trustme.CA) -> None:
        self.document = ""
        self.up = True
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.fetches += 1
                body = server.document.encode() if server.up else b"down"
                self.send_response(200 if server.up else 503)
                self.send_header("Content-Type", "application/jose+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}/metadata.jws"

    def __enter__(self) -> MetadataServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
