"""Conditional Access for an authentication context, as Entra evaluates it, with one policy.

# zt: secure-with-cae
An app tags its sensitive actions with an authentication context (c1 here); its API asks for the context
with a claims challenge, `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`. Entra evaluates the
Conditional Access policy that targets the context (here: a second factor, a one-time code), and once it
is met puts the context in the access token's `acrs` claim. A context met in a sign-in session holds for
the policy's sign-in frequency: a refresh asking for it within that time gets it without a prompt, one
after it is answered `interaction_required` with the claims to ask for interactively. An on-behalf-of
request gets a context the user's own token already carries.

The one-time code stands in for the second factor (Authenticator, FIDO2, SMS): the emulator prints it to
its terminal and shows it on its admin view, where the person (or a test) reads it.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import EntraError

if TYPE_CHECKING:
    from .core import Emulator
    from .state import SignInSession

log = logging.getLogger("identity_emulator.stepup")


@dataclass(frozen=True)
class AuthContext:
    id: str
    display_name: str
    requires: str  # what the policy asks for, as the verification page words it


# The tenant's authentication contexts and the one policy each (Entra: Conditional Access, "Authentication
# context" targets, "Require multifactor authentication" grant control, sign-in frequency session control).
CONTEXTS = {"c1": AuthContext("c1", "Sensitive actions", "a one-time code")}
SIGN_IN_FREQUENCY_SECONDS = 600
CODE_LIFETIME_SECONDS = 300
MAX_ATTEMPTS = 5


@dataclass
class OneTimeCode:
    upn: str
    context: str
    code: str
    expires: float
    attempts: int = 0


def requested(claims: str | None) -> list[str]:
    """The authentication contexts a claims request asks for (`acrs`, `value` or `values`)."""
    try:
        acrs = json.loads(claims or "null")["access_token"]["acrs"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return []
    if not isinstance(acrs, dict):
        return []
    values: Any = acrs.get("values", [acrs.get("value")])
    return sorted({v for v in values if isinstance(v, str) and v in CONTEXTS}) if isinstance(values, list) else []


def merged(*requests: str | None) -> str | None:
    """Claims requests merged member by member (the code's, asked at authorize, and the redemption's)."""
    found: dict[str, dict[str, Any]] = {}
    for raw in requests:
        try:
            parsed = json.loads(raw or "null")
        except (ValueError, RecursionError):
            continue
        if isinstance(parsed, dict):
            for member, wanted in parsed.items():
                if isinstance(wanted, dict):
                    found.setdefault(member, {}).update(wanted)
    return json.dumps(found, separators=(",", ":")) if found else None


def claims_request(contexts: Iterable[str]) -> str:
    wanted = sorted(contexts)
    acrs: dict[str, Any] = {"essential": True, "value": wanted[0]} if len(wanted) == 1 else {"essential": True}
    if len(wanted) > 1:
        acrs["values"] = wanted
    return json.dumps({"access_token": {"acrs": acrs}}, separators=(",", ":"))


def met(session: SignInSession | None, now: float | None = None) -> set[str]:
    """The contexts this sign-in session met within the sign-in frequency."""
    now = time.time() if now is None else now
    if session is None:
        return set()
    return {c for c, at in session.contexts.items() if now - at < SIGN_IN_FREQUENCY_SECONDS}


def contexts_for(emu: Emulator, claims: str | None, session_id: str | None, carried: Iterable[str] = ()) -> list[str]:
    """The `acrs` a token issued for this request carries: every context asked for, each met in the sign-in
    session or carried by the user's own token (on-behalf-of); else interaction is needed."""
    wanted = requested(claims)
    if not wanted:
        return []
    have = met(emu.store.sessions.get(session_id or "")) | set(carried)
    missing = [c for c in wanted if c not in have]
    if missing:
        raise EntraError("interaction_required", 50076, claims=claims_request(missing))
    return wanted


def issue_code(emu: Emulator, txn_id: str, upn: str, context: str) -> OneTimeCode:
    code = OneTimeCode(upn, context, f"{secrets.randbelow(10**6):06d}", time.time() + CODE_LIFETIME_SECONDS)
    emu.store.one_time_codes[txn_id] = code
    # The second factor's channel: this terminal and the admin view (dev/test only).
    log.warning("one-time code for %s (authentication context %s): %s", upn, context, code.code)
    return code


def check_code(emu: Emulator, txn_id: str, presented: str) -> bool | None:
    """True: the code matches (used up); False: it doesn't; None: no usable code (expired, too many tries)."""
    code = emu.store.one_time_codes.get(txn_id)
    if code is None or code.expires < time.time() or code.attempts >= MAX_ATTEMPTS:
        emu.store.one_time_codes.pop(txn_id, None)
        return None
    code.attempts += 1
    if secrets.compare_digest(presented.strip().encode(), code.code.encode()):
        emu.store.one_time_codes.pop(txn_id, None)
        return True
    return False
