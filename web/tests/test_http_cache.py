"""MSAL's memory of refused token requests, bounded and forgettable (web/token_caches.py, HttpCache).

Driven through MSAL's own throttling HTTP client, the one every ConfidentialClientApplication wraps around
its HTTP client, so a change in how MSAL keys or keeps refusals fails here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from msal.throttled_http_client import ThrottledHttpClient
from web.token_caches import HttpCache

TOKEN = "https://login.example/tenant/oauth2/v2.0/token"
REFRESH = {"grant_type": "refresh_token", "refresh_token": "rt", "scope": "api://api/Tasks.Read.All"}


@dataclass
class Answer:
    status_code: int
    text: str = '{"error": "invalid_grant", "error_codes": [90094]}'
    headers: dict[str, str] = field(default_factory=dict)


class TokenService:
    """Refuses until an administrator consents; counts what reaches it."""

    def __init__(self) -> None:
        self.requests, self.consented = 0, False

    def post(self, url: str, **kwargs: Any) -> Answer:
        self.requests += 1
        return Answer(200, '{"access_token": "t"}') if self.consented else Answer(400)

    def get(self, url: str, **kwargs: Any) -> Answer:
        return Answer(200, "{}")

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _msal_with(cache: HttpCache) -> tuple[ThrottledHttpClient, TokenService]:
    service = TokenService()
    return ThrottledHttpClient(service, http_cache=cache), service


def test_msal_replays_a_refusal_from_memory_then_asks_again_after_the_bound() -> None:
    clock = Clock()
    http, service = _msal_with(HttpCache(refusal_seconds=15, clock=clock))
    assert http.post(TOKEN, data=REFRESH).status_code == 400
    service.consented = True
    clock.now += 14
    assert http.post(TOKEN, data=REFRESH).status_code == 400  # MSAL's replay, from memory
    assert service.requests == 1
    clock.now += 1
    assert http.post(TOKEN, data=REFRESH).status_code == 200  # not MSAL's 60 s: asked again
    assert service.requests == 2


def test_forgetting_refusals_sends_the_next_request_to_the_token_service_at_once() -> None:
    cache = HttpCache(clock=Clock())
    http, service = _msal_with(cache)
    assert http.post(TOKEN, data=REFRESH).status_code == 400
    assert http.post(TOKEN, data=REFRESH).status_code == 400 and service.requests == 1
    service.consented = True
    cache.forget_refusals()
    assert http.post(TOKEN, data=REFRESH).status_code == 200 and service.requests == 2


def test_only_refusals_are_forgotten_discovery_stays_cached() -> None:
    cache = HttpCache(clock=Clock())
    http, _ = _msal_with(cache)
    http.get("https://login.example/tenant/v2.0/.well-known/openid-configuration")
    http.post(TOKEN, data=REFRESH)
    kept = {k for k in cache if k != "_index_"}
    cache.forget_refusals()
    assert {k for k in cache if k != "_index_"} == {k for k in kept if k.startswith("GET ")} != set()
