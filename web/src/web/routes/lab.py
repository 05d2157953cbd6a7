"""The attack lab: the forged and misplaced tokens of zerotrust.attacks, fired at the api from this server
with the signed-in user's real token as the material, and what the api answered to each.

Local only: the router exists when WEB_ATTACK_LAB is on (zt run sets it; Settings refuse it in
production). Every token stays on the server: the page shows the status, the challenge and the verdict,
never a token, and anything token-shaped in an answer is blanked before it is shown.
"""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

import anyio.to_thread
import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData
from zerotrust.attacks import ATTACKS, Attack, AttackContext, fire
from zerotrust.redact import JWT_SHAPE as _JWT_SHAPE

from ..auth import Identity, IdentityProviderUnavailable
from ..dependencies import api_token, clients, csrf_form, require_session
from ..pages import error_page, page
from ..session import Session

router = APIRouter(tags=["lab"])

REALM = "api"
TARGET_PATH = "/tasks"
KEY_SET_TTL = 600.0
MAX_CHALLENGE = 300
SKIP_REASON = (
    "Needs a real token for another API. This web app holds none for downstream-api: only the api gets one, "
    "on behalf of you. zt scorecard fires it at downstream-api with your api token."
)

Verdict = Literal["PASS", "FAIL", "SKIP", "ERROR"]


@dataclass(frozen=True)
class Result:
    status: int | None
    www_authenticate: str
    verdict: Verdict
    note: str  # PASS: the rule that stopped it; otherwise what went wrong or why it was not fired


class KeySet:  # zt: protect-api
    """The identity provider's published keys (from its discovery document's jwks_uri), cached: the
    public key is material for one attack (HS256 signed with it)."""

    def __init__(self, ttl: float = KEY_SET_TTL) -> None:
        self.ttl = ttl
        self._jwks: dict[str, Any] | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def get(self, identity: Identity, client: httpx.Client) -> dict[str, Any]:
        with self._lock:
            if self._jwks is None or time.monotonic() - self._fetched_at > self.ttl:
                jwks_uri = identity.discovery().get("jwks_uri")
                if not isinstance(jwks_uri, str):
                    raise IdentityProviderUnavailable("discovery has no jwks_uri")
                try:
                    response = client.get(jwks_uri)
                    jwks = response.json() if response.status_code == 200 else None
                except (httpx.HTTPError, ValueError):
                    jwks = None
                if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
                    raise IdentityProviderUnavailable("key set")
                self._jwks, self._fetched_at = jwks, time.monotonic()
            return self._jwks


def _shown(www_authenticate: str, token: str) -> str:
    """The challenge as shown on the page: no token, nothing token-shaped, not too long."""
    return _JWT_SHAPE.sub("[token]", www_authenticate.replace(token, "[token]"))[:MAX_CHALLENGE]


def fire_attacks(
    attacks: list[Attack], token: str, keys: KeySet, identity: Identity, url: str, timeout: float
) -> dict[str, Result]:  # zt: protect-api
    """Blocking: runs in a worker thread. The api's certificate is checked against SSL_CERT_FILE
    (locally the stack's dev CA, which zt run puts there)."""
    client = httpx.Client(
        verify=ssl.create_default_context(),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
    with client:
        ctx = AttackContext(token, keys.get(identity, client))
        results: dict[str, Result] = {}
        for attack in attacks:
            if attack.needs_other_audience:
                results[attack.id] = Result(None, "", "SKIP", SKIP_REASON)
                continue
            try:
                outcome = fire(attack, ctx, client, url, REALM)
            except httpx.HTTPError as exc:
                results[attack.id] = Result(None, "", "ERROR", f"The api could not be reached ({type(exc).__name__}).")
                continue
            results[attack.id] = Result(
                outcome.status,
                _shown(outcome.www_authenticate, token),
                "PASS" if outcome.passed else "FAIL",
                outcome.why,
            )
        return results


def _lab_page(request: Request, results: dict[str, Result] | None = None) -> Response:
    summary = None
    if results:
        verdicts = [r.verdict for r in results.values()]
        summary = {v: verdicts.count(v) for v in ("PASS", "FAIL", "SKIP", "ERROR")}
    api_url = clients(request).settings.api_url
    return page(
        request, "lab.html", attacks=ATTACKS, results=results or {}, summary=summary, target=api_url + TARGET_PATH
    )


@router.get("/lab")
async def lab(request: Request, session: Session = Depends(require_session)) -> Response:  # zt: protect-api
    return _lab_page(request)


@router.post("/lab")
async def fire_at_api(request: Request, form: FormData = Depends(csrf_form)) -> Response:  # zt: protect-api
    choice = form.get("attack")
    chosen = [a for a in ATTACKS if choice in ("all", a.id)]
    if not chosen:
        return error_page(request, 400, "No such attack", "Pick an attack from the list.", retry="/lab")
    c = clients(request)
    token = await api_token(request, request.state.session)
    keys: KeySet = request.app.state.lab_keys
    results = await anyio.to_thread.run_sync(
        fire_attacks, chosen, token, keys, c.identity, c.settings.api_url + TARGET_PATH, c.settings.api_timeout_seconds
    )
    return _lab_page(request, results)
