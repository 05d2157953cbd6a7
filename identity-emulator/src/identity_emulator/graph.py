"""A sliver of Microsoft Graph: the signed-in user's profile and group memberships.

    GET  /v1.0/me                                                   ->  {"id", "displayName", "userPrincipalName"}
    POST /v1.0/me/getMemberObjects  {"securityEnabledOnly": true}  ->  {"value": ["<group id>", ...]}
    GET  /v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id,displayName&$top=999
                                    ->  {"value": [{"id", "displayName"}, ...], "@odata.nextLink"?}

Served on the https back channel only to access tokens this emulator minted for Graph (aud is
Graph's application id) that carry a delegated scope Graph documents for the call (User.Read is
the least privileged for "memberships of the signed-in user"). As in Graph, a token that may list the
memberships but not read groups (User.Read) gets each group's id with a null displayName ("limited
information returned for inaccessible member objects"): names need GroupMember.Read.All, which an
administrator consents to. Each call writes an audit line naming the permission it used
(graph_audit.py). APIs reach it at a configured Graph
URL (https://graph.microsoft.com in Azure), never at a URL found in a token's _claim_sources. Like Graph,
it is a CAE resource (cae.py): a capable client's token is re-evaluated on every request.
"""

from __future__ import annotations

import re
from typing import Any

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from . import graph_audit
from .cae import capable, challenge, critical_event
from .directory import User
from .forms import emulator, require_back_channel
from .shapes import well_formed
from .tokens import GRAPH_APP_ID

router = APIRouter(prefix="/v1.0", tags=["graph"])

# What Graph accepts for each call, least privileged first (Graph's permission tables): the audit line
# names the first one a token holds.
PROFILE = ("User.Read", "User.ReadWrite", "User.Read.All", "Directory.Read.All")
# zt: configure-tokens-group-claims-app-roles - what Graph accepts for the signed-in user's memberships.
MEMBERSHIP = ("User.Read", "GroupMember.Read.All", "User.Read.All", "Directory.Read.All")
MEMBERSHIP_SCOPES = frozenset(MEMBERSHIP)
# Reading a group's properties (its displayName) beyond its id: what an administrator consents to.
GROUP_READ = ("GroupMember.Read.All", "Group.Read.All", "Directory.Read.All")
GROUP_PROPERTIES = ("id", "displayName")
DEFAULT_PAGE, MAX_PAGE = 100, 999
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


def _signed_in_user(request: Request, accepted: tuple[str, ...], route: str) -> User | JSONResponse:
    """The user a request's Graph token is for, still in the directory and enabled; else Graph's refusal.
    `accepted`: the scopes Graph takes for the call, least privileged first (for the audit line)."""
    require_back_channel(request)
    emu = emulator(request)
    emu.graph_requests += 1
    found = token_claims(request, frozenset(accepted))
    if isinstance(found, JSONResponse):
        return found
    graph_audit.record(request, found, accepted, route)
    user = emu.directory.user_by_oid(str(found["tid"]), str(found["oid"]))
    if user is None or (user.tenant_id, user.object_id) in emu.store.admin.disabled:
        return graph_error(404, "Request_ResourceNotFound", "The signed-in user no longer exists.")
    return user


@router.get("/me")
async def me(request: Request) -> JSONResponse:
    user = _signed_in_user(request, PROFILE, "/v1.0/me")
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
    user = _signed_in_user(request, MEMBERSHIP, "/v1.0/me/getMemberObjects")
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


def _page_size(raw: str | None) -> int | None:
    if raw is None:
        return DEFAULT_PAGE
    return int(raw) if raw.isdigit() and 1 <= int(raw) <= MAX_PAGE else None


@router.get("/me/transitiveMemberOf/microsoft.graph.group")
async def my_groups(request: Request) -> JSONResponse:
    """The signed-in user's groups, a page at a time; names only for a token that may read groups."""
    route = "/v1.0/me/transitiveMemberOf/microsoft.graph.group"
    user = _signed_in_user(request, MEMBERSHIP, route)
    if isinstance(user, JSONResponse):
        return user
    query = request.query_params
    selected = [p.strip() for p in (query.get("$select") or ",".join(GROUP_PROPERTIES)).split(",") if p.strip()]
    unknown = [p for p in selected if p not in GROUP_PROPERTIES]
    if unknown:
        return graph_error(
            400,
            "Request_BadRequest",
            f"Could not find a property named '{unknown[0][:64]}' on type 'microsoft.graph.group'; "
            "select id and displayName.",
        )
    size, skip = _page_size(query.get("$top")), query.get("$skiptoken", "0")
    if size is None or not skip.isdigit():
        return graph_error(400, "Request_BadRequest", f"$top must be 1 to {MAX_PAGE}; $skiptoken as Graph gave it.")
    held = set(str(request.state.graph_use.claims.get("scp") or "").split())
    names = "displayName" in selected and bool(held & set(GROUP_READ))
    if names:
        # zt: configure-tokens-group-claims-app-roles
        # The call read group properties: what it used is a group-reading permission, not User.Read.
        graph_audit.record(request, request.state.graph_use.claims, GROUP_READ, route)
    tenant = emulator(request).directory.tenants[user.tenant_id]
    start = int(skip)
    ids = list(user.groups)[start : start + size]
    value: list[dict[str, str | None]] = []
    for gid in ids:
        group: dict[str, str | None] = {"@odata.type": "#microsoft.graph.group", "id": gid}
        if "displayName" in selected:
            group["displayName"] = tenant.groups.get(gid) if names else None
        value.append(group)
    body: dict[str, Any] = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups", "value": value}
    if start + size < len(user.groups):
        body["@odata.nextLink"] = str(
            request.url.include_query_params(**{"$skiptoken": str(start + size), "$top": str(size)})
        )
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


# Reading other users' basic profiles (id, displayName), least privileged first.
USER_BASIC = ("User.ReadBasic.All", "User.Read.All", "Directory.Read.All")
MAX_IN_VALUES = 15  # Graph's limit on the values of one `in` filter
_ID_FILTER = re.compile(
    r"^id (?:in \((?P<many>'[0-9a-f-]{36}'(?:,\s*'[0-9a-f-]{36}')*)\)|eq '(?P<one>[0-9a-f-]{36})')$"
)


@router.get("/users")
async def users(request: Request) -> JSONResponse:
    """Users of the caller's tenant by id (`$filter=id in ('…', …)`), id and displayName only."""
    user = _signed_in_user(request, USER_BASIC, "/v1.0/users")
    if isinstance(user, JSONResponse):
        return user
    query = request.query_params
    found = _ID_FILTER.match(query.get("$filter") or "")
    selected = {p.strip() for p in (query.get("$select") or "id,displayName").split(",") if p.strip()}
    if found is None or not selected <= set(GROUP_PROPERTIES):
        return graph_error(
            400,
            "Request_UnsupportedQuery",
            "Ask for users by id: $filter=id in ('<id>', ...) (up to 15) and $select=id,displayName.",
        )
    ids = re.findall(r"'([0-9a-f-]{36})'", found.group("many") or "") or [found.group("one")]
    if len(ids) > MAX_IN_VALUES:
        return graph_error(
            400, "Request_UnsupportedQuery", f"Too many values in an 'in' filter (at most {MAX_IN_VALUES})."
        )
    tenant = emulator(request).directory.tenants[user.tenant_id]
    people = {u.object_id: u for u in tenant.users.values()}
    value = [
        {"id": oid} | ({"displayName": people[oid].display_name} if "displayName" in selected else {})
        for oid in dict.fromkeys(ids)
        if oid in people
    ]
    return JSONResponse(
        {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id,displayName)", "value": value},
        headers={"Cache-Control": "no-store"},
    )
