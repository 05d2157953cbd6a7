"""The admin view's side for apps: tenant-wide consent, and the tenant's signing keys.

Only an administrator with a role that may grant consent changes consent, and only in their own tenant
(admin_auth.py); the same grant, asked for by an app, goes through the admin consent endpoint
(adminconsent.py).
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response

from .admin import done
from .admin_auth import admin_of, admin_router, foreign, needs
from .core import Emulator
from .directory import CONSENT_ROLES, GLOBAL_ADMINISTRATOR
from .errors import EntraError
from .forms import emulator, read_form

router = admin_router()
# Signing keys are Microsoft's to rotate in Entra, not a tenant's: here the most privileged role stands in.
MANAGES_KEYS = [Depends(needs(frozenset({GLOBAL_ADMINISTRATOR})))]
GRANTS_CONSENT = [Depends(needs(CONSENT_ROLES))]


@router.post("/keys/rotate", dependencies=MANAGES_KEYS)
async def rotate(request: Request) -> Response:
    emu = emulator(request)
    key = emu.keys.rotate()
    return done(
        request, f"signing key rotated, new kid {key.kid}", kid=key.kid, published=[k.kid for k in emu.keys.published()]
    )


@router.post("/keys/withdraw-retired", dependencies=MANAGES_KEYS)
async def withdraw(request: Request) -> Response:
    emu = emulator(request)
    gone = emu.keys.withdraw_retired()
    return done(request, f"withdrew {len(gone)} retired key(s)", withdrawn=gone)


def _consent_target(request: Request, emu: Emulator, form: dict[str, str]) -> tuple[str, str, str]:
    tenant = emu.directory.tenant(form.get("tenant", ""))
    client = emu.directory.by_name.get(form.get("client", ""))
    resource = emu.directory.by_name.get(form.get("resource", ""))
    if tenant is None or client is None or resource is None:
        raise EntraError("invalid_request", 9002313)
    if tenant.tenant_id != admin_of(request).tenant_id:
        raise foreign(request, "An administrator grants and revokes consent in their own tenant only.")
    return tenant.tenant_id, client.application_id, resource.application_id


# zt: permissions-require-admin-consent
@router.post("/consent/grant", dependencies=GRANTS_CONSENT)
async def grant_consent(request: Request) -> Response:
    """Tenant-wide admin consent: the resource's delegated scopes for everyone in the tenant
    (admin-only ones included), and the application roles the client's registration asks for."""
    emu = emulator(request)
    tid, cid, rid = _consent_target(request, emu, await read_form(request))
    client, resource = emu.directory.applications[cid], emu.directory.applications[rid]
    scopes = emu.consent.grant_admin(tid, client, resource)
    emu.consent.grant_admin_roles(tid, client, resource)
    emu.store.save()
    return done(request, f"admin consent granted for {client.name} on {resource.name}", scopes=sorted(scopes))


@router.post("/consent/revoke", dependencies=GRANTS_CONSENT)
async def revoke_consent(request: Request) -> Response:
    """Removes this client's grants on this resource in the tenant (admin and users' alike), as
    deleting its oauth2PermissionGrants does: the next token request for them is refused. Access
    tokens already issued stay valid until they expire, as in Entra ID."""
    emu = emulator(request)
    tid, cid, rid = _consent_target(request, emu, await read_form(request))
    admin = emu.store.admin
    admin.admin_consent.pop((tid, cid, rid), None)
    admin.admin_roles.pop((tid, cid, rid), None)
    admin.user_consent = {k: v for k, v in admin.user_consent.items() if (k[0], k[2], k[3]) != (tid, cid, rid)}
    emu.store.save()
    return done(request, "consent revoked")


@router.post("/reset", dependencies=MANAGES_KEYS)
async def reset(request: Request) -> Response:
    """The demo tenant as at its first start, for the next workshop (`make reset`): consents, revocations,
    disabled, deleted and renamed users, sign-in sessions and grants in flight are forgotten, as a restart
    on an empty admin state would; the signing keys, demo password and managed identity headers stay."""
    emu = emulator(request)
    emu.store.discard()
    # A new emulator over the same state dir: nothing of the old directory or store can linger in it.
    request.app.state.emulator = Emulator(emu.settings)
    return done(request, "demo state restored", state_dir=str(emu.settings.state_dir))
