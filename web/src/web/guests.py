"""What a guest of the organization may do here, said where a guest meets its limit.

# zt: zero-trust-token-customization
A B2B guest's tokens carry `acct` 1. The api decides, from its own validated access token: a guest keeps
her own tasks but may not see the organization's or share with its groups (api/dependencies.py,
refuse_guests). The web app only explains: it hides the Organization link from a guest (its ID token says
acct 1) and shows the policy on the page she reaches, instead of sending her to a request that can only be
refused or, before an administrator's consent, to an "admin approval" page that is not about her.
A crafted request still goes to the api, and the api still refuses it.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse
from zerotrust.correlation import correlation_id

from .pages import page
from .sessions import Session

CAN = (
    "sign in to this app with your own organization's account (you are a guest here: acct 1)",
    "keep your own tasks: read, add, complete and delete them",
    "see your identity through the chain, and the permissions this app holds for you",
    "stop sharing a task you shared before",
)
CANNOT = (
    "see the organization's tasks (the Organization view)",
    "share a task with the organization's groups",
)


def is_guest(session: Session | None) -> bool:
    return session is not None and session.user.account_type == "guest"


def refused(request: Request, title: str) -> HTMLResponse:
    """403: what a guest can and cannot do here, and who decides it."""
    return page(
        request, "guest_refused.html", 403, title=title, can=CAN, cannot=CANNOT, reference=correlation_id(request)
    )
