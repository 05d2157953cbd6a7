"""The token endpoint and the device authorization endpoint (https back channel only)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from . import stepup
from .cae import capable, claims_request, critical_event, requested_nbf
from .client_auth import Client
from .core import Emulator
from .directory import Tenant
from .errors import EntraError
from .forms import emulator, read_form, require_back_channel
from .shapes import well_formed
from .state import DeviceGrant, new_handle
from .tokens import parse_scopes, wants_cp1

router = APIRouter()

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# On-behalf-of assertions: aud checked against the client below; clocks may differ by 5 minutes, as Entra allows.
ASSERTION_CHECKS: jwt.types.Options = {"verify_aud": False, "require": ["aud", "exp", "iss", "tid"]}
# No vowels: no words, no 0/O or 1/I confusion. An alphabet, not a secret:
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ23456789"  # pragma: allowlist secret

Form = dict[str, str]
Grant = Callable[[Emulator, Form, str, Tenant | None], dict[str, Any]]


def _param(form: Form, name: str) -> str:
    value = form.get(name)
    if not value:
        raise EntraError("invalid_request", 900144, param=name)
    return value


def _confidential_client(emu: Emulator, form: Form, tenant: str) -> Client:
    client = emu.client_auth.authenticate(form, tenant)
    if client.azpacr == "0":
        raise EntraError("invalid_client", 7000218, status=401)
    return client


@router.post("/{tenant}/oauth2/v2.0/token", tags=["protocol"])
async def token(tenant: str, request: Request) -> JSONResponse:
    require_back_channel(request)
    emu = emulator(request)
    emu.store.token_requests += 1
    form = await read_form(request)
    path_tenant = emu.tenant_for_path(tenant)
    grant_type = _param(form, "grant_type")
    handler = GRANTS.get(grant_type)
    if handler is None:
        raise EntraError("unsupported_grant_type", 70003, grant_type=grant_type[:100])
    emu.store.prune(time.time(), 600)
    return JSONResponse(handler(emu, form, tenant, path_tenant), headers=NO_STORE)


def _authorization_code(emu: Emulator, form: Form, tenant: str, path_tenant: Tenant | None) -> dict[str, Any]:
    client = emu.client_auth.authenticate(form, tenant)
    code = emu.store.codes.get(_param(form, "code"))
    if code is None or code.client_id != client.app.application_id:
        raise EntraError("invalid_grant", 70000)
    if code.redeemed:
        # A replayed code means it leaked: revoke what it already produced (RFC 9700 4.5).
        emu.store.revoke_family(code.family)
        raise EntraError("invalid_grant", 54005)
    code.redeemed = True
    if code.expires < time.time():
        raise EntraError("invalid_grant", 70008)
    if form.get("redirect_uri") != code.redirect_uri:
        raise EntraError(
            "invalid_grant",
            50011,
            redirect_uri=(form.get("redirect_uri") or "")[:200],
            client_id=client.app.application_id,
        )
    verifier = _param(form, "code_verifier")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    if not hmac.compare_digest(challenge, code.code_challenge):
        raise EntraError("invalid_grant", 501481)
    user = emu.user(code.user)
    emu.check_user_active(user, code.auth_time)
    return emu.user_tokens(
        user,
        client,
        form.get("scope") or " ".join(code.scopes),
        claims=stepup.merged(code.claims, form.get("claims")),
        auth_time=code.auth_time,
        family=code.family,
        nonce=code.nonce,
        session_id=code.session_id,
    )


def _refresh_token(emu: Emulator, form: Form, tenant: str, path_tenant: Tenant | None) -> dict[str, Any]:
    client = emu.client_auth.authenticate(form, tenant)
    grant = emu.store.refresh.get(_param(form, "refresh_token"))
    if grant is None or grant.client_id != client.app.application_id:
        raise EntraError("invalid_grant", 9002313)
    if grant.expires < time.time():
        raise EntraError("invalid_grant", 700082)
    user = emu.user(grant.user)
    if path_tenant is not None and path_tenant.tenant_id != user.tenant_id:
        raise EntraError("invalid_grant", 9002313)
    emu.check_user_active(user, grant.auth_time)
    if grant.session_id is not None and grant.session_id not in emu.store.sessions:
        # The sign-in session this refresh token belongs to was ended (sign-out or revocation).
        raise EntraError(
            "invalid_grant",
            50173,
            suberror="bad_token",
            issued=str(grant.auth_time),
            valid_from="the end of that session",
        )
    return emu.user_tokens(
        user,
        client,
        _param(form, "scope"),
        claims=form.get("claims"),
        auth_time=grant.auth_time,
        family=grant.family,
        session_id=grant.session_id,
    )


def _client_credentials(emu: Emulator, form: Form, tenant: str, path_tenant: Tenant | None) -> dict[str, Any]:
    client = _confidential_client(emu, form, tenant)
    if path_tenant is None:
        raise EntraError("invalid_request", 50059)
    emu.check_app_in_tenant(client.app, path_tenant.tenant_id)
    raw = _param(form, "scope")
    req = parse_scopes(raw, emu.directory)
    if not req.default or req.resource is None or req.oidc:
        raise EntraError("invalid_scope", 1002012, scope=raw[:200])
    roles = emu.store.admin.admin_roles.get(
        (path_tenant.tenant_id, client.app.application_id, req.resource.application_id), set()
    )
    # Only roles the resource still defines for applications; a user-only role is never granted to an app.
    valid = [
        r
        for r in roles
        if r in req.resource.app_roles and "Application" in req.resource.app_roles[r].allowed_member_types
    ]
    emu.check_app_assigned(client.app, req.resource, valid)
    access, exp = emu.issuer.app_access_token(
        path_tenant.tenant_id, client.app, req.resource, valid, client.azpacr, form.get("claims")
    )
    return {
        "token_type": "Bearer",  # a token type, not a secret  # nosec B105
        "expires_in": exp - int(time.time()),
        "ext_expires_in": exp - int(time.time()),
        "access_token": access,
    }


def _on_behalf_of(emu: Emulator, form: Form, tenant: str, path_tenant: Tenant | None) -> dict[str, Any]:
    client = _confidential_client(emu, form, tenant)
    if form.get("requested_token_use") != "on_behalf_of":
        raise EntraError("invalid_request", 900144, param="requested_token_use")
    assertion = _param(form, "assertion")
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise EntraError("invalid_grant", 50027) from None
    key = emu.keys.public_key(str(header.get("kid", "")))
    if key is None:
        raise EntraError("invalid_grant", 50013)
    try:
        claims = jwt.decode(assertion, key, algorithms=["RS256"], options=ASSERTION_CHECKS, leeway=300)
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
        raise EntraError("invalid_grant", 500133) from None
    except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError, jwt.InvalidKeyError):
        raise EntraError("invalid_grant", 50013) from None
    except (jwt.PyJWTError, RecursionError):
        # Signed, but not a token: a claim missing or of the wrong type, a payload nested past reading.
        raise EntraError("invalid_grant", 50027) from None
    if not well_formed(claims):
        raise EntraError("invalid_grant", 50027)
    if claims["iss"] != emu.issuer.issuer(str(claims["tid"])) or str(claims["tid"]) not in emu.directory.tenants:
        raise EntraError("invalid_grant", 50013)
    if claims["aud"] not in client.app.resource_ids():
        raise EntraError("invalid_grant", 500131, aud=str(claims["aud"])[:200], client_id=client.app.application_id)
    if claims.get("idtyp") == "app" or "scp" not in claims or "oid" not in claims:
        # OBO exists to carry a user; an app-only token has none to carry.
        raise EntraError("invalid_grant", 5000224)
    if path_tenant is not None and path_tenant.tenant_id != claims["tid"]:
        raise EntraError("invalid_grant", 500131, aud=str(claims["aud"])[:200], client_id=client.app.application_id)
    user = emu.user((str(claims["tid"]), str(claims["oid"])))
    _continuous_access(emu, claims, form.get("claims"))
    emu.check_user_active(user, emu.issuer.issued_at(claims))
    emu.check_app_in_tenant(client.app, user.tenant_id)
    return emu.user_tokens(
        user,
        client,
        _param(form, "scope"),
        claims=form.get("claims"),
        auth_time=emu.issuer.issued_at(claims) or time.time(),
        carried_contexts=claims.get("acrs") or [],
        family=new_handle(8),
    )


# zt: secure-with-cae
def _continuous_access(emu: Emulator, assertion: dict[str, Any], claims: str | None) -> None:
    """For a capable chain (the user's token or the request declares cp1): an incoming token older than a
    critical event, or than the claims request the middle tier passes on, can't be exchanged; only a fresh
    sign-in can, so the answer carries the claims for the middle tier to send back to its client."""
    if not (capable(assertion.get("xms_cc")) or wants_cp1(claims)):
        return
    issued = emu.issuer.issued_at(assertion)
    since = critical_event(emu, str(assertion["tid"]), str(assertion["oid"]), issued)
    wanted = requested_nbf(claims)
    if since is None and wanted is not None and issued < wanted:
        since = wanted
    if since is not None and (str(assertion["tid"]), str(assertion["oid"])) not in emu.store.admin.disabled:
        raise EntraError("interaction_required", 50173, suberror="bad_token", claims=claims_request(since))


def _device_code(emu: Emulator, form: Form, tenant: str, path_tenant: Tenant | None) -> dict[str, Any]:
    client = emu.client_auth.authenticate(form, tenant)
    device = emu.store.devices.get(_param(form, "device_code"))
    if device is None or device.client_id != client.app.application_id:
        raise EntraError("invalid_grant", 70000)
    if device.expires < time.time():
        raise EntraError("expired_token", 70020)
    if device.status == "pending":
        raise EntraError("authorization_pending", 70016)
    if device.status == "declined":
        raise EntraError("authorization_declined", 65004)
    if device.status == "redeemed" or device.user is None:
        raise EntraError("invalid_grant", 70000)
    device.status = "redeemed"
    user = emu.user(device.user)
    emu.check_user_active(user, device.auth_time)
    return emu.user_tokens(
        user, client, " ".join(device.scopes), claims=device.claims, auth_time=device.auth_time, family=new_handle(8)
    )


GRANTS: dict[str, Grant] = {
    "authorization_code": _authorization_code,
    "refresh_token": _refresh_token,
    "client_credentials": _client_credentials,
    "urn:ietf:params:oauth:grant-type:jwt-bearer": _on_behalf_of,
    "urn:ietf:params:oauth:grant-type:device_code": _device_code,
    "device_code": _device_code,
}


@router.post("/{tenant}/oauth2/v2.0/devicecode", tags=["protocol"])
async def devicecode(tenant: str, request: Request) -> JSONResponse:
    require_back_channel(request)
    emu = emulator(request)
    form = await read_form(request)
    emu.tenant_for_path(tenant)
    client: Client = emu.client_auth.authenticate(form, tenant)
    if not client.app.allow_public_client_flows:
        raise EntraError("invalid_client", 7000218, status=401)
    req = parse_scopes(_param(form, "scope"), emu.directory)
    user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(9))
    device = DeviceGrant(
        new_handle(),
        user_code,
        client.app.application_id,
        tenant,
        sorted(req.oidc)
        + req.full_for(sorted(req.scopes))
        + (
            [f"{req.resource.identifier_uri or req.resource.application_id}/.default"]
            if req.default and req.resource
            else []
        ),
        form.get("claims"),
        time.time() + emu.settings.device_code_lifetime,
    )
    emu.store.devices[device.device_code] = device
    uri = f"{emu.settings.front_base}/devicelogin"
    return JSONResponse(
        {
            "user_code": user_code,
            "device_code": device.device_code,
            "verification_uri": uri,
            "expires_in": emu.settings.device_code_lifetime,
            "interval": emu.settings.device_code_interval,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} "
            "to authenticate.",
        },
        headers=NO_STORE,
    )
