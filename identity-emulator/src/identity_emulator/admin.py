"""The workshop's admin view: what a tenant administrator does in the Entra admin center.

Every action here changes only the emulator's directory; apps learn of it solely through the
protocol (a refused refresh token, a new key in the key set, a token that now carries a scope).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from . import provisioning, stepup
from .core import Emulator
from .directory import User
from .errors import EntraError
from .forms import emulator, read_form
from .pages import page

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("", response_class=HTMLResponse)
async def view(request: Request) -> Response:
    emu = emulator(request)
    admin = emu.store.admin
    users = [
        {
            "user": u,
            "tenant": t,
            "disabled": (u.tenant_id, u.object_id) in admin.disabled,
            "valid_from": admin.tokens_valid_from.get((u.tenant_id, u.object_id)),
            "sessions": sum(1 for s in emu.store.sessions.values() if s.user == (u.tenant_id, u.object_id)),
        }
        for t in emu.directory.tenants.values()
        for u in t.users.values()
    ]
    deleted = [{"user": u, "tenant": t} for t in emu.directory.tenants.values() for u in t.deleted.values()]
    apps = emu.directory.applications

    def row(tenant_id: str, client: str, resource_id: str, values: set[str], kind: str) -> dict[str, Any]:
        return {
            "tenant": emu.directory.tenants[tenant_id].name,
            "client": client,
            "resource": apps[resource_id].name,
            "scopes": sorted(values),
            "kind": kind,
        }

    consents = (
        [row(t, apps[c].name, r, s, "admin (tenant-wide)") for (t, c, r), s in admin.admin_consent.items() if s]
        # An app-role grant may name a managed identity, which has no registration: shown by its client id.
        + [
            row(t, apps[c].name if c in apps else c, r, s, "app roles")
            for (t, c, r), s in admin.admin_roles.items()
            if s
        ]
        + [row(t, apps[c].name, r, s, f"user {_upn(emu, t, o)}") for (t, o, c, r), s in admin.user_consent.items() if s]
    )
    return page(
        request,
        "admin.html",
        users=users,
        deleted=deleted,
        keys=emu.keys.published(),
        active=emu.keys.active.kid,
        consents=consents,
        apps=sorted(a.name for a in apps.values()),
        tenants=sorted(t.name for t in emu.directory.tenants.values()),
        done=request.query_params.get("done"),
        codes=_codes(emu),
        contexts=stepup.CONTEXTS.values(),
        frequency_minutes=stepup.SIGN_IN_FREQUENCY_SECONDS // 60,
    )


def _codes(emu: Emulator) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {"upn": c.upn, "context": c.context, "code": c.code, "expires_in": int(c.expires - now)}
        for c in emu.store.one_time_codes.values()
        if c.expires > now
    ]


# zt: secure-with-cae
@router.get("/one-time-codes")
async def one_time_codes(request: Request) -> JSONResponse:
    """The second factor's channel (dev/test only): the codes waiting to be typed, newest last."""
    return JSONResponse({"codes": _codes(emulator(request))}, headers={"Cache-Control": "no-store"})


@router.get("/stats")
async def stats(request: Request) -> JSONResponse:
    """Counters for workshops and tests, e.g. proving a steady-state request costs no token call."""
    emu = emulator(request)
    return JSONResponse(
        {
            "token_requests": emu.store.token_requests,
            "graph_requests": emu.graph_requests,
            "key_set_requests": emu.store.key_set_requests,
            "sessions": len(emu.store.sessions),
        },
        headers={"Cache-Control": "no-store"},
    )


def _upn(emu: Emulator, tenant_id: str, oid: str) -> str:
    user = emu.directory.user_by_oid(tenant_id, oid)
    return user.upn if user else oid


def _done(request: Request, message: str, **data: Any) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"done": message, **data})
    return RedirectResponse(f"/admin?done={message}", status_code=303)


def _user(emu: Emulator, form: dict[str, str]) -> User:
    user = emu.directory.user(form.get("upn", ""))
    if user is None:
        raise EntraError("invalid_request", 50034, upn=form.get("upn", "")[:100], tenant="any")
    return user


def _void_sessions(emu: Emulator, user: User) -> None:
    """A critical event: every refresh token and sign-in session issued until now is void."""
    ref = (user.tenant_id, user.object_id)
    # Strictly after every grant issued so far, even one issued in this same second.
    emu.store.admin.tokens_valid_from[ref] = time.time() + 1e-3
    # Refresh tokens stay on file so that presenting one answers "revoked" (AADSTS50173), as Entra does.
    emu.store.end_sessions(ref)
    emu.store.save()


@router.post("/users/revoke-sessions")
async def revoke_sessions(request: Request) -> Response:
    """Like revokeSignInSessions (Revoke-MgUserSignInSession)."""
    emu = emulator(request)
    user = _user(emu, await read_form(request))
    _void_sessions(emu, user)
    return _done(request, f"sessions revoked for {user.upn}")


@router.post("/users/reset-password")
async def reset_password(request: Request) -> Response:
    """Like an administrator resetting a password: a critical event, sessions and refresh tokens void. The
    demo password stays as it is, so the workshop can go on; in Entra the user signs in with the new one."""
    emu = emulator(request)
    user = _user(emu, await read_form(request))
    _void_sessions(emu, user)
    return _done(request, f"password reset for {user.upn} (sessions revoked; the demo password is unchanged)")


# zt: zero-trust-token-customization - names change, object ids don't.
@router.post("/users/rename")
async def rename(request: Request) -> Response:
    """Change a user's sign-in name (UPN, which the demo also uses as email) and display name, as an
    administrator does after a marriage or a domain move. Object id and tenant stay: what the user
    can reach must not change (zt: zero-trust-token-customization). Kept until the emulator restarts."""
    emu = emulator(request)
    form = await read_form(request)
    user = _user(emu, form)
    tenant = emu.directory.tenants[user.tenant_id]
    new_upn = form.get("new_upn", "").strip().lower()
    local, at, domain = new_upn.partition("@")
    if not local or not at or domain != tenant.domain or len(new_upn) > 100 or not new_upn.isprintable():
        raise EntraError("invalid_request", 9002313)
    if new_upn != user.upn and emu.directory.user(new_upn) is not None:
        raise EntraError("invalid_request", 9002313)
    display_name = form.get("display_name", "").strip()[:100] or user.display_name
    del tenant.users[user.upn]
    user.upn, user.display_name = new_upn, display_name
    tenant.users[new_upn] = user
    return _done(request, f"renamed to {new_upn}", upn=new_upn, display_name=display_name, object_id=user.object_id)


# zt: secure-with-cae
@router.post("/users/disable")
async def disable(request: Request) -> Response:
    """Like setting accountEnabled to false: no new sign-in or token, Graph challenges the user's capable
    tokens at once, and the app is told over SCIM (provisioning.py) so it refuses the tokens already out."""
    emu = emulator(request)
    user = _user(emu, await read_form(request))
    emu.store.admin.disabled.add((user.tenant_id, user.object_id))
    emu.store.end_sessions((user.tenant_id, user.object_id))
    emu.store.save()
    told = await provisioning.push(emu, user, active=False)
    return _done(request, f"{user.upn} disabled; {told}", provisioning=told)


@router.post("/users/enable")
async def enable(request: Request) -> Response:
    emu = emulator(request)
    user = _user(emu, await read_form(request))
    emu.store.admin.disabled.discard((user.tenant_id, user.object_id))
    emu.store.save()
    told = await provisioning.push(emu, user, active=True)
    return _done(request, f"{user.upn} enabled; {told}", provisioning=told)


@router.post("/users/delete")
async def delete(request: Request) -> Response:
    """Like deleting a user: gone from sign-in and Graph (a critical event for CAE). A soft delete, as in
    Entra: provisioning deactivates the user in the app (their data kept), and only a permanent deletion,
    30 days on, long after every token expired, sends the app a SCIM DELETE. Restorable until the emulator
    restarts."""
    emu = emulator(request)
    user = _user(emu, await read_form(request))
    tenant = emu.directory.tenants[user.tenant_id]
    _void_sessions(emu, user)
    tenant.deleted[tenant.users.pop(user.upn).upn] = user
    told = await provisioning.push(emu, user, active=False)
    return _done(request, f"{user.upn} deleted; {told}", provisioning=told)


@router.post("/users/restore")
async def restore(request: Request) -> Response:
    """Like restoring a deleted user: the same object id signs in again (tokens from before stay void), and
    provisioning creates the user in the app again."""
    emu = emulator(request)
    upn = (await read_form(request)).get("upn", "").strip().lower()
    tenant = next((t for t in emu.directory.tenants.values() if upn in t.deleted), None)
    if tenant is None:
        raise EntraError("invalid_request", 50034, upn=upn[:100], tenant="any")
    user = tenant.users[upn] = tenant.deleted.pop(upn)
    told = await provisioning.push(emu, user, active=True)
    return _done(request, f"{user.upn} restored; {told}", provisioning=told)


@router.post("/keys/rotate")
async def rotate(request: Request) -> Response:
    emu = emulator(request)
    key = emu.keys.rotate()
    return _done(
        request, f"signing key rotated, new kid {key.kid}", kid=key.kid, published=[k.kid for k in emu.keys.published()]
    )


@router.post("/keys/withdraw-retired")
async def withdraw(request: Request) -> Response:
    emu = emulator(request)
    gone = emu.keys.withdraw_retired()
    return _done(request, f"withdrew {len(gone)} retired key(s)", withdrawn=gone)


def _consent_target(emu: Emulator, form: dict[str, str]) -> tuple[str, str, str]:
    tenant = emu.directory.tenant(form.get("tenant", ""))
    client = emu.directory.by_name.get(form.get("client", ""))
    resource = emu.directory.by_name.get(form.get("resource", ""))
    if tenant is None or client is None or resource is None:
        raise EntraError("invalid_request", 9002313)
    return tenant.tenant_id, client.application_id, resource.application_id


@router.post("/consent/grant")
async def grant_consent(request: Request) -> Response:
    """Tenant-wide admin consent: the resource's delegated scopes for everyone in the tenant
    (admin-only ones included), and the application roles the client's registration asks for."""
    emu = emulator(request)
    key = _consent_target(emu, await read_form(request))
    client = emu.directory.applications[key[1]]
    resource = emu.directory.applications[key[2]]
    # zt: permissions-require-admin-consent - admin-only scopes included, for everyone in the tenant.
    scopes = emu.consent.grant_admin(key[0], client, resource)
    wanted_roles = {
        r
        for r in client.required_roles.get(resource.application_id, ())
        if "Application" in getattr(resource.app_roles.get(r), "allowed_member_types", ())
    }
    if wanted_roles:
        emu.store.admin.admin_roles.setdefault(key, set()).update(wanted_roles)
    emu.store.save()
    return _done(request, f"admin consent granted for {client.name} on {resource.name}", scopes=sorted(scopes))


@router.post("/consent/revoke")
async def revoke_consent(request: Request) -> Response:
    """Removes this client's grants on this resource in the tenant (admin and users' alike), as
    deleting its oauth2PermissionGrants does: the next token request for them is refused. Access
    tokens already issued stay valid until they expire, as in Entra ID."""
    emu = emulator(request)
    tid, cid, rid = _consent_target(emu, await read_form(request))
    admin = emu.store.admin
    admin.admin_consent.pop((tid, cid, rid), None)
    admin.admin_roles.pop((tid, cid, rid), None)
    admin.user_consent = {k: v for k, v in admin.user_consent.items() if (k[0], k[2], k[3]) != (tid, cid, rid)}
    emu.store.save()
    return _done(request, "consent revoked")
