"""The workshop's admin view: what a tenant administrator does in the Entra admin center.

Every action here changes only the emulator's directory; apps learn of it solely through the
protocol (a refused refresh token, a new key in the key set, a token that now carries a scope).
Only a signed-in administrator gets in (admin_auth.py), and sees and changes their own tenant only.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from . import provisioning, stepup
from .admin_auth import admin_of, admin_router, needs
from .core import Emulator
from .directory import USER_ROLES, User
from .errors import EntraError
from .forms import emulator, read_form
from .pages import page

router = admin_router()
MANAGES_USERS = [Depends(needs(USER_ROLES))]


@router.get("", response_class=HTMLResponse)
async def view(request: Request) -> Response:
    emu = emulator(request)
    me = admin_of(request)
    admin = emu.store.admin
    mine = [emu.directory.tenants[me.tenant_id]]
    users = [
        {
            "user": u,
            "tenant": t,
            "disabled": (u.tenant_id, u.object_id) in admin.disabled,
            "valid_from": admin.tokens_valid_from.get((u.tenant_id, u.object_id)),
            "sessions": sum(1 for s in emu.store.sessions.values() if s.user == (u.tenant_id, u.object_id)),
        }
        for t in mine
        for u in t.users.values()
    ]
    deleted = [{"user": u, "tenant": t} for t in mine for u in t.deleted.values()]
    apps = emu.directory.applications

    def row(tenant_id: str, client: str, resource_id: str, values: set[str], kind: str) -> dict[str, Any]:
        return {
            "tenant": emu.directory.tenants[tenant_id].name,
            "client": client,
            "resource": apps[resource_id].name,
            "scopes": sorted(values),
            "kind": kind,
        }

    ours = me.tenant_id
    consents = (
        [
            row(t, apps[c].name, r, s, "admin (tenant-wide)")
            for (t, c, r), s in admin.admin_consent.items()
            if s and t == ours
        ]
        # An app-role grant may name a managed identity, which has no registration: shown by its client id.
        + [
            row(t, apps[c].name if c in apps else c, r, s, "app roles")
            for (t, c, r), s in admin.admin_roles.items()
            if s and t == ours
        ]
        + [
            row(t, apps[c].name, r, s, f"user {_upn(emu, t, o)}")
            for (t, o, c, r), s in admin.user_consent.items()
            if s and t == ours
        ]
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
        tenants=[t.name for t in mine],
        admin=me,
        done=request.query_params.get("done"),
        codes=_codes(emu, me.tenant_id),
        contexts=stepup.CONTEXTS.values(),
        frequency_minutes=stepup.SIGN_IN_FREQUENCY_SECONDS // 60,
    )


def _codes(emu: Emulator, tenant_id: str) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {"upn": c.upn, "context": c.context, "code": c.code, "expires_in": int(c.expires - now)}
        for c in emu.store.one_time_codes.values()
        if c.expires > now and getattr(emu.directory.user(c.upn), "tenant_id", None) == tenant_id
    ]


# zt: secure-with-cae
@router.get("/one-time-codes")
async def one_time_codes(request: Request) -> JSONResponse:
    """The second factor's channel (dev/test only): the codes waiting to be typed, newest last."""
    codes = _codes(emulator(request), admin_of(request).tenant_id)
    return JSONResponse({"codes": codes}, headers={"Cache-Control": "no-store"})


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


def done(request: Request, message: str, **data: Any) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"done": message, **data})
    return RedirectResponse(f"/admin?done={message}", status_code=303)


def _user(request: Request, form: dict[str, str]) -> User:
    """The user a form names, in the administrator's own tenant (another tenant's are not theirs to see)."""
    user = emulator(request).directory.user(form.get("upn", ""))
    if user is None or user.tenant_id != admin_of(request).tenant_id:
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


@router.post("/users/revoke-sessions", dependencies=MANAGES_USERS)
async def revoke_sessions(request: Request) -> Response:
    """Like revokeSignInSessions (Revoke-MgUserSignInSession)."""
    emu = emulator(request)
    user = _user(request, await read_form(request))
    _void_sessions(emu, user)
    return done(request, f"sessions revoked for {user.upn}")


@router.post("/users/reset-password", dependencies=MANAGES_USERS)
async def reset_password(request: Request) -> Response:
    """Like an administrator resetting a password: a critical event, sessions and refresh tokens void. The
    demo password stays as it is, so the workshop can go on; in Entra the user signs in with the new one."""
    emu = emulator(request)
    user = _user(request, await read_form(request))
    _void_sessions(emu, user)
    return done(request, f"password reset for {user.upn} (sessions revoked; the demo password is unchanged)")


# zt: zero-trust-token-customization - names change, object ids don't.
@router.post("/users/rename", dependencies=MANAGES_USERS)
async def rename(request: Request) -> Response:
    """Change a user's sign-in name (UPN, which the demo also uses as email) and display name, as an
    administrator does after a marriage or a domain move. Object id and tenant stay: what the user
    can reach must not change (zt: zero-trust-token-customization). Kept until the emulator restarts."""
    emu = emulator(request)
    form = await read_form(request)
    user = _user(request, form)
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
    return done(request, f"renamed to {new_upn}", upn=new_upn, display_name=display_name, object_id=user.object_id)


# zt: secure-with-cae
@router.post("/users/disable", dependencies=MANAGES_USERS)
async def disable(request: Request) -> Response:
    """Like setting accountEnabled to false: no new sign-in or token, Graph challenges the user's capable
    tokens at once, and the app is told over SCIM (provisioning.py) so it refuses the tokens already out."""
    emu = emulator(request)
    user = _user(request, await read_form(request))
    emu.store.admin.disabled.add((user.tenant_id, user.object_id))
    emu.store.end_sessions((user.tenant_id, user.object_id))
    emu.store.save()
    told = await provisioning.push(emu, user, active=False)
    return done(request, f"{user.upn} disabled; {told}", provisioning=told)


@router.post("/users/enable", dependencies=MANAGES_USERS)
async def enable(request: Request) -> Response:
    emu = emulator(request)
    user = _user(request, await read_form(request))
    emu.store.admin.disabled.discard((user.tenant_id, user.object_id))
    emu.store.save()
    told = await provisioning.push(emu, user, active=True)
    return done(request, f"{user.upn} enabled; {told}", provisioning=told)


@router.post("/users/delete", dependencies=MANAGES_USERS)
async def delete(request: Request) -> Response:
    """Like deleting a user: gone from sign-in and Graph (a critical event for CAE). A soft delete, as in
    Entra: provisioning deactivates the user in the app (their data kept), and only a permanent deletion,
    30 days on, long after every token expired, sends the app a SCIM DELETE. Restorable until the emulator
    restarts."""
    emu = emulator(request)
    user = _user(request, await read_form(request))
    tenant = emu.directory.tenants[user.tenant_id]
    _void_sessions(emu, user)
    tenant.deleted[tenant.users.pop(user.upn).upn] = user
    told = await provisioning.push(emu, user, active=False)
    return done(request, f"{user.upn} deleted; {told}", provisioning=told)


@router.post("/users/restore", dependencies=MANAGES_USERS)
async def restore(request: Request) -> Response:
    """Like restoring a deleted user: the same object id signs in again (tokens from before stay void), and
    provisioning creates the user in the app again."""
    emu = emulator(request)
    upn = (await read_form(request)).get("upn", "").strip().lower()
    tenant = emu.directory.tenants[admin_of(request).tenant_id]
    if upn not in tenant.deleted:
        raise EntraError("invalid_request", 50034, upn=upn[:100], tenant="any")
    user = tenant.users[upn] = tenant.deleted.pop(upn)
    told = await provisioning.push(emu, user, active=True)
    return done(request, f"{user.upn} restored; {told}", provisioning=told)
