"""The SS 12000 token cache renews a token at a margin proportional to its lifetime."""

from __future__ import annotations

import httpx
import pytest

from connector.config import Ss12000SourceConfig
from connector.sources.ss12000_api import TokenSource
from tests.fakes.ss12000_server import SS12000Server


class HandClock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tokens_for(server: SS12000Server, http: httpx.Client, clock: HandClock) -> TokenSource:
    config = Ss12000SourceConfig.model_validate(
        {
            "name": "sis",
            "type": "ss12000",
            "base_url": server.base_url,
            "auth": {
                "token_url": server.token_url,
                "client_id": server.client_id,
                "client_secret": server.client_secret,
            },
        }
    )
    return TokenSource(config, http, clock)


@pytest.mark.parametrize(
    ("expires_in", "used_for"),
    [(30, 25), (40, 35), (300, 270), (3600, 3240)],  # margin: max(5 s, 10 % of expires_in)
)
def test_a_token_is_used_until_its_margin(expires_in: int, used_for: float) -> None:
    with SS12000Server(token_lifetime=expires_in) as server, httpx.Client() as http:
        clock = HandClock()
        tokens = tokens_for(server, http, clock)
        first = tokens.token()
        start = clock.now

        clock.now = start + used_for - 0.01
        assert tokens.token() == first
        assert server.tokens_issued == 1

        clock.now = start + used_for
        assert tokens.token() != first
        assert server.tokens_issued == 2


def test_a_token_shorter_than_the_margin_serves_only_its_own_request() -> None:
    with SS12000Server(token_lifetime=4) as server, httpx.Client() as http:
        clock = HandClock()
        tokens = tokens_for(server, http, clock)
        assert tokens.token() != tokens.token()
        assert server.tokens_issued == 2
