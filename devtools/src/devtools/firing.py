"""Sending the attack catalogue (devtools.attacks) at an API and judging each answer: for `zt scorecard`,
the attack suite, and the web app's attack lab (which runs only against the local emulator)."""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from cachetools import TTLCache
from zerotrust.redact import JWT_SHAPE

from devtools.attacks import Attack, AttackContext

KEY_SET_TTL = 600.0
MAX_CHALLENGE = 300
SKIP_REASON = (
    "Needs a real token for another API. This web app holds none for downstream-api: only the api gets one, "
    "on behalf of you. zt scorecard fires it at downstream-api with your api token."
)
Verdict = Literal["PASS", "FAIL", "SKIP", "ERROR"]


@dataclass(frozen=True)
class Outcome:
    attack: Attack
    status: int
    www_authenticate: str
    passed: bool
    why: str


def expected_challenge(attack: Attack, realm: str) -> str:
    return f'Bearer realm="{realm}"' + (f', error="{attack.error}"' if attack.error else "")


def judge(attack: Attack, realm: str, status: int, www_authenticate: str) -> Outcome:
    """Passed when the status is exact and the challenge names the realm and exactly the expected error."""
    expected = expected_challenge(attack, realm)
    if status != attack.status:
        return Outcome(attack, status, www_authenticate, False, f"expected HTTP {attack.status}, got {status}")
    if attack.error is None and www_authenticate != expected:
        return Outcome(attack, status, www_authenticate, False, f"expected a bare challenge {expected!r}")
    if attack.error is not None and not www_authenticate.startswith(expected):
        return Outcome(attack, status, www_authenticate, False, f"expected a challenge starting {expected!r}")
    return Outcome(attack, status, www_authenticate, True, attack.rule)


def fire(attack: Attack, ctx: AttackContext, client: httpx.Client, url: str, realm: str) -> Outcome:
    """Send one attack to `url` (a GET route that needs a valid token) and judge the answer."""
    params = attack.params(ctx) if attack.params else None
    response = client.get(url, headers=attack.build(ctx), params=params)
    return judge(attack, realm, response.status_code, response.headers.get("www-authenticate", ""))


@dataclass(frozen=True)
class Result:
    status: int | None
    www_authenticate: str
    verdict: Verdict
    note: str  # PASS: the rule that stopped it; otherwise what went wrong or why it was not fired


class KeySetCache:
    """The identity provider's published keys, cached: the public key is material for one attack (HS256
    signed with it)."""

    def __init__(self, ttl: float = KEY_SET_TTL) -> None:
        self._cache: TTLCache[str, dict[str, Any]] = TTLCache(4, ttl)
        self._lock = threading.Lock()

    def get(self, jwks_uri: str, client: httpx.Client) -> dict[str, Any] | None:
        with self._lock:
            if jwks_uri not in self._cache:
                try:
                    response = client.get(jwks_uri)
                    jwks = response.json() if response.status_code == 200 else None
                except (httpx.HTTPError, ValueError):
                    jwks = None
                if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
                    return None
                self._cache[jwks_uri] = jwks
            return self._cache[jwks_uri]


def shown(www_authenticate: str, token: str) -> str:
    """A challenge as a page may show it: no token, nothing token-shaped, not too long."""
    return JWT_SHAPE.sub("[token]", www_authenticate.replace(token, "[token]"))[:MAX_CHALLENGE]


class KeySetUnavailable(Exception):
    pass


# zt: protect-api
def fire_attacks(
    attacks: list[Attack], token: str, keys: KeySetCache, jwks_uri: str, url: str, realm: str, timeout: float
) -> dict[str, Result]:
    """Blocking (run it in a worker thread). The target's certificate is checked against SSL_CERT_FILE
    (locally the stack's dev CA, which zt run puts there)."""
    tls = ssl.create_default_context()
    with httpx.Client(verify=tls, timeout=timeout, follow_redirects=False, trust_env=False) as client:
        jwks = keys.get(jwks_uri, client)
        if jwks is None:
            raise KeySetUnavailable
        ctx = AttackContext(token, jwks)
        results: dict[str, Result] = {}
        for attack in attacks:
            if attack.needs_other_audience:
                results[attack.id] = Result(None, "", "SKIP", SKIP_REASON)
                continue
            try:
                outcome = fire(attack, ctx, client, url, realm)
            except httpx.HTTPError as exc:
                results[attack.id] = Result(None, "", "ERROR", f"The api could not be reached ({type(exc).__name__}).")
                continue
            verdict: Verdict = "PASS" if outcome.passed else "FAIL"
            results[attack.id] = Result(outcome.status, shown(outcome.www_authenticate, token), verdict, outcome.why)
        return results
