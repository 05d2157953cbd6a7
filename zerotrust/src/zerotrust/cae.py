"""Continuous access evaluation for a client, and for an API between a client and a CAE resource.

A client that declares the cp1 capability (MSAL's `client_capabilities=["CP1"]`; Entra puts it in tokens
as `xms_cc`) promises to handle claims challenges: a 401 whose WWW-Authenticate carries
`error="insufficient_claims"` and `claims="<base64 JSON claims request>"`. It answers one by asking the
identity provider again with those claims (silently where it can; else the person signs in again).

An API in the middle never passes a challenge on as it came: it reads the claims, drops what it cached
for the user, and answers its own caller with its own challenge, and only to a caller that declared cp1
(one that didn't would not know what to do with it: it gets a plain 401 invalid_token).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import replace

from .onbehalf import OboError
from .protect import BearerError
from .tokens import Principal

# How MSAL spells the capability; Entra matches it case-insensitively and issues it lower case.
CP1 = "CP1"
CAPABILITIES = [CP1]
# Entra's claims requests are a few dozen bytes (an nbf, an acrs); anything far larger is not one.
MAX_CLAIMS_BYTES = 2048
# The members a claims request may have (OpenID Connect Core 5.5, as Entra uses it).
_CLAIMS_MEMBERS = frozenset({"access_token", "id_token", "userinfo"})
_AUTH_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))')


def handles_claims_challenges(xms_cc: Iterable[str]) -> bool:
    """The token's client declared cp1: it can take a claims challenge."""
    return any(value.lower() == CP1.lower() for value in xms_cc)


def claims_request(claims: str | bytes) -> str | None:
    """`claims` as a well-formed claims request (compact JSON text), or None: never passed on unchecked."""
    if len(claims) > MAX_CLAIMS_BYTES:
        return None
    try:
        parsed = json.loads(claims)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict) or not parsed or not set(parsed) <= _CLAIMS_MEMBERS:
        return None
    if not all(isinstance(member, dict) for member in parsed.values()):
        return None
    return json.dumps(parsed, separators=(",", ":"), sort_keys=True)


def challenged_claims(www_authenticate: str | None) -> str | None:
    """The claims request of a Bearer `insufficient_claims` challenge (decoded and checked), else None."""
    if not www_authenticate or len(www_authenticate) > 4 * MAX_CLAIMS_BYTES:
        return None
    scheme, _, rest = www_authenticate.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    params = {m[1].lower(): m[2] if m[2] is not None else m[3] for m in _AUTH_PARAM.finditer(rest)}
    encoded = params.get("claims")
    if params.get("error") != "insufficient_claims" or not encoded:
        return None
    try:
        # Entra sends standard base64 with padding; some resources send it URL-safe and unpadded.
        raw = base64.urlsafe_b64decode(encoded.replace("+", "-").replace("/", "_") + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return None
    return claims_request(raw)


# zt: secure-with-cae
def for_caller(refusal: OboError, caller_capabilities: Iterable[str]) -> OboError:
    """The relay rule: what this tier tells its caller when the token service (or a CAE resource) wants
    claims. A caller that declared cp1 gets a claims challenge; any other, a plain invalid_token."""
    if refusal.claims is None:
        return refusal
    if handles_claims_challenges(caller_capabilities):
        description = "Your organization requires you to sign in again to continue."
        return replace(refusal, status=401, error="insufficient_claims", description=description)
    return replace(refusal, claims=None)


def bearer_refusal(refusal: OboError, caller: Principal, realm: str) -> BearerError:
    """An on-behalf-of refusal this tier's caller must hear as a 401, by the relay rule."""
    told = for_caller(refusal, caller.xms_cc)
    return BearerError(401, realm, told.error, told.description, claims=told.claims)
