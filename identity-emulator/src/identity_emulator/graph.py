"""A sliver of Microsoft Graph: the signed-in user's profile and group memberships.

    GET  /v1.0/me                                                   ->  {"id", "displayName", "userPrincipalName"}
    POST /v1.0/me/getMemberObjects  {"securityEnabledOnly": true}  ->  {"value": ["<group id>", ...]}

Served on the https back channel only to access tokens this emulator minted for Graph (aud is
Graph's application id) that carry a delegated scope Graph documents for the call (User.Read is
the least privileged for "memberships of the signed-in user"). APIs reach it at a configured Graph
URL (https://graph.microsoft.com in Azure), never at a URL found in a token's _claim_sources. Like Graph,
it is a CAE resource (cae.py): a capable client's token is re-evaluated on every request.
"""

from __future__ import annotations

from typing import Any

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .cae import capable, challenge, critical_event
from .directory import User
from .forms import emulator, require_back_channel
from .shapes import well_formed
from .tokens import GRAPH_APP_ID

router = APIRouter(prefix="/v1.0", tags=["graph"])

# zt: configure-tokens-group-claims-app-roles - what Graph accepts for /me/getMemberObjects.
MEMBERSHIP_SCOPES = frozenset({"User.Read", "User.Read.All", "Directory.Read.All", "GroupMember.Read.All"})
MAX_BODY_BYTES = 4096
# Clock skew a resource tolerates between itself and the issuer, as Entra's resources do (five minutes).
CLOCK_SKEW_SECONDS = 300


def graph_error(status: int, code: str, message: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="", error="invalid_token"'
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def token_claims(request: Request, scopes: frozenset[str] = MEMBERSHIP_SCOPES) -> dict[str, Any] | JSONResponse:
    """A Graph access token's claims, if this emulator minted it and it carries one of `scopes`; else
    Graph's refusal (401 for no valid token, 403 for a valid one without the permission)."""
    emu = emulator(request)
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
    try:
        kid = str(jwt.get_unverified_header(token.strip()).get("kid", ""))
        key = emu.keys.public_key(kid)
        if key is None:
            raise jwt.InvalidTokenError("unknown kid")
        claims: dict[str, Any] = jwt.decode(
            token.strip(),
            key,
            algorithms=["RS256"],
            audience=[GRAPH_APP_ID, "https://graph.microsoft.com"],
            options={"require": ["exp", "iss", "tid", "aud"]},
            leeway=CLOCK_SKEW_SECONDS,
        )
    except jwt.PyJWTError:
        return graph_error(401, "InvalidAuthenticationToken", "Access token validation failure.")
    if not well_formed(claims, audience_list=True):
        return graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Malformed token.")
    tid = str(claims["tid"])
    if tid not in emu.directory.tenants or claims["iss"] != emu.issuer.issuer(tid):
        return graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid issuer.")
    if not set(str(claims.get("scp") or "").split()) & scopes or "oid" not in claims:
        return graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    # zt: secure-with-cae
    # A capable client's token is checked against the user's critical events on every request.
    since = critical_event(emu, tid, str(claims["oid"]), emu.issuer.issued_at(claims))
    if capable(claims.get("xms_cc")) and since is not None:
        refused = graph_error(
            401,
            "InvalidAuthenticationToken",
            "Continuous access evaluation resulted in challenge with result: InteractionRequired "
            "and code: TokenIssuedBeforeRevocationTimestamp",
        )
        refused.headers["WWW-Authenticate"] = challenge(emu, GRAPH_APP_ID, since)
        return refused
    return claims


def _signed_in_user(request: Request) -> User | JSONResponse:
    """The user a request's Graph token is for, still in the directory and enabled; else Graph's refusal."""
    require_back_channel(request)
    emu = emulator(request)
    emu.graph_requests += 1
    found = token_claims(request)
    if isinstance(found, JSONResponse):
        return found
    user = emu.directory.user_by_oid(str(found["tid"]), str(found["oid"]))
    if user is None or (user.tenant_id, user.object_id) in emu.store.admin.disabled:
        return graph_error(404, "Request_ResourceNotFound", "The signed-in user no longer exists.")
    return user


@router.get("/me")
async def me(request: Request) -> JSONResponse:
    user = _signed_in_user(request)
    if isinstance(user, JSONResponse):
        return user
    return JSONResponse(
        {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
            "id": user.object_id,
            "displayName": user.display_name,
            "userPrincipalName": user.upn,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post("/me/getMemberObjects")
async def get_member_objects(request: Request) -> JSONResponse:
    user = _signed_in_user(request)
    if isinstance(user, JSONResponse):
        return user
    if len(await request.body()) > MAX_BODY_BYTES:
        return graph_error(413, "Request_BadRequest", "The request body is too large.")
    # Every demo group is a security group, so securityEnabledOnly changes nothing here.
    return JSONResponse(
        {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)",
            "value": list(user.groups),
        },
        headers={"Cache-Control": "no-store"},
    )
