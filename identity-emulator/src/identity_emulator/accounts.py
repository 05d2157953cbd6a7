"""The account picker: Entra's answer to prompt=select_account, and its "Sign in with another account".

# zt: user-authentication
Entra signs in silently whoever is signed in in this browser; an app that was refused that person
(another tenant, not assigned) would send them straight back to the same refusal. prompt=select_account
shows the accounts signed in here and "Use another account" instead; picking one continues the sign-in as
that person, "Use another account" asks for a sign-in. A refusal page offers the same picker for the
sign-in it refused (Entra's "Sign in with a different account"), so the app's own request resumes as
someone else: same state, nonce and PKCE challenge, which only the app that started it can finish.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from .errors import EntraError
from .forms import emulator, read_form
from .state import PendingSignIn, SignInSession

router = APIRouter()


def picker_url(txn: PendingSignIn) -> str:
    return f"/{txn.path_tenant}/select-account?txn={txn.id}"


def picker(request: Request, txn: PendingSignIn, session: SignInSession | None) -> Response:
    """The accounts signed in in this browser (the emulator keeps one) and "Use another account"."""
    from .pages import login_page, page  # pages imports this module

    emu = emulator(request)
    user = emu.directory.user_by_oid(*session.user) if session is not None else None
    if user is None:
        return login_page(request, txn)
    app = emu.directory.applications[txn.client_id]
    return page(request, "select_account.html", txn=txn.id, tenant=txn.path_tenant, app=app, user=user)


def _pending(request: Request, handle: str) -> PendingSignIn | None:
    from .pages import PENDING_TTL  # pages imports this module

    txn = emulator(request).store.pending.get(handle)
    if txn is None or txn.kind != "authorize" or time.time() - txn.created > PENDING_TTL:
        return None
    return txn


@router.get("/{tenant}/select-account", response_class=HTMLResponse, tags=["pages"])
async def show(tenant: str, request: Request, txn: str = "") -> Response:
    from .pages import error_page, signed_in  # pages imports this module

    pending = _pending(request, txn)
    if pending is None:
        return error_page(request, EntraError("invalid_request", 50089))
    return picker(request, pending, signed_in(emulator(request), request))


@router.post("/{tenant}/select-account", response_class=HTMLResponse, tags=["pages"])
async def choose(tenant: str, request: Request) -> Response:
    from .pages import continue_sign_in, error_page, login_page, signed_in  # pages imports this module

    emu = emulator(request)
    try:
        form = await read_form(request)
    except EntraError as err:
        return error_page(request, err, err.status)
    pending = _pending(request, form.get("txn", ""))
    if pending is None:
        return error_page(request, EntraError("invalid_request", 50089))
    session = signed_in(emu, request)
    user = emu.directory.user_by_oid(*session.user) if session is not None else None
    # Only the account this browser's session holds can be picked: any other is a sign-in.
    if form.get("account") != "signed-in" or session is None or user is None:
        return login_page(request, pending)
    return continue_sign_in(emu, request, pending, user, session)
