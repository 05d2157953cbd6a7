"""Incremental consent: sign-in asks for read only; the first write asks for write, then does it.

# zt: acquire-application-authorization-to-access-resources
A write first tries MSAL silently (cached token, else the refresh token) for the write scope. A
person who already consented gets it with no page at all. Otherwise the token service answers
that consent is missing, and only then is the person sent to the identity provider, asking for
that one scope: its consent page lists just what is new. The write waits sealed in the pending
sign-in's cookie (never in a URL, never readable or changeable by the browser), and is done once
when the person comes back, for the same user, or not at all if they refuse.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

import aiohttp
from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from zerotrust.ids import OBJECT_ID

from . import api_client, notices
from .api_client import ApiError, ClaimsChallenge
from .dependencies import Clients, SignInRequired
from .pages import error_page
from .sessions import PendingSignIn, Session
from .signin import SignInFailed
from .token_caches import Acquired

MAX_TITLE = 200
_TASK_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
Action = Literal["add", "complete", "delete", "share", "unshare", "delete_all"]
NOT_DONE_AFTER_SIGN_IN = (
    "Nothing was changed",
    "You signed in again, but your organization still did not accept the sign-in for this change. "
    "Try again in a moment, or sign out and in again.",
)


@dataclass(frozen=True)
class PendingWrite:
    """One task write, as the person asked for it."""

    action: Action
    title: str | None = None
    task_id: str | None = None
    group_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PendingWrite | None:
        """Checked again on the way back (defence in depth: it comes from our own sealed cookie)."""
        if not isinstance(data, dict):
            return None
        action, title, task_id = data.get("action"), data.get("title"), data.get("task_id")
        group_id = data.get("group_id")
        if group_id is not None and (
            action != "share" or not isinstance(group_id, str) or not OBJECT_ID.fullmatch(group_id)
        ):
            return None
        if action == "add" and isinstance(title, str) and 0 < len(title) <= MAX_TITLE and task_id is None:
            return cls("add", title=title)
        if action == "delete_all" and title is None and task_id is None and group_id is None:
            return cls("delete_all")
        if title or not isinstance(task_id, str) or not _TASK_ID.match(task_id):
            return None
        if action in ("complete", "delete", "unshare"):
            return cls(action, task_id=task_id)
        if action == "share" and group_id is not None:
            return cls("share", task_id=task_id, group_id=group_id)
        return None

    @property
    def what(self) -> str:
        """For the pages: what was (not) done."""
        if self.action == "add":
            return f"adding the task “{self.title}”"
        if self.action == "delete_all":
            return "deleting all your tasks"
        verbs = {"complete": "completing", "delete": "deleting", "share": "sharing", "unshare": "no longer sharing"}
        return f"{verbs[self.action]} a task"

    async def perform(self, http: aiohttp.ClientSession, token: str) -> None:
        if self.action == "add" and self.title is not None:
            await api_client.add_task(http, token, self.title)
        elif self.action == "complete" and self.task_id is not None:
            await api_client.complete_task(http, token, self.task_id)
        elif self.action == "delete" and self.task_id is not None:
            await api_client.delete_task(http, token, self.task_id)
        elif self.action == "share" and self.task_id is not None and self.group_id is not None:
            await api_client.share_task(http, token, self.task_id, self.group_id)
        elif self.action == "unshare" and self.task_id is not None:
            await api_client.share_task(http, token, self.task_id, None)
        elif self.action == "delete_all":
            await api_client.delete_all_tasks(http, token)


@dataclass(frozen=True)
class Incremental:
    """More permission asked for by a signed-in person: who asked, and what waits for it."""

    oid: str
    tid: str
    write: PendingWrite | None = None
    # A sign-in again to meet a claims challenge (web/cae.py), rather than a request for more permission.
    reauth: bool = False

    def to_dict(self) -> dict[str, Any]:
        write = self.write.to_dict() if self.write else None
        return {"oid": self.oid, "tid": self.tid, "write": write, "reauth": self.reauth}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Incremental | None:
        if not isinstance(data, dict) or not isinstance(data.get("oid"), str) or not isinstance(data.get("tid"), str):
            return None
        write = None
        if data.get("write") is not None:
            write = PendingWrite.from_dict(data["write"])
            if write is None:
                return None
        return cls(data["oid"], data["tid"], write, data.get("reauth") is True)


class ConsentRequired(Exception):
    """The write scope could not be had silently: ask the person, then do `write`."""

    def __init__(self, write: PendingWrite) -> None:
        super().__init__(write.action)
        self.write = write


def needs_admin_approval(got: Acquired) -> bool:
    # zt: permissions-require-admin-consent
    # AADSTS90094: only an administrator can grant what was asked (admin_consent_required).
    return 90094 in got.error_codes


# region quote: write-token
async def write_token(c: Clients, session: Session, write: PendingWrite) -> str:
    """A token with the write scope, silently if at all possible; else ConsentRequired."""
    got = await c.signin.tokens.acquire(session, list(c.settings.api_write_scopes))
    if got is None:
        # No token cache at all (it expired with the session store): a plain sign-in first.
        raise SignInRequired("/tasks")
    if got.token is None:
        # consent_required (AADSTS65001) or any other refusal of the refresh token: the interactive
        # request fixes both, asking only for what is missing.
        raise ConsentRequired(write)
    return got.token


# endregion


# zt: acquire-application-authorization-to-access-resources
async def ask_for(
    request: Request, c: Clients, scopes: list[str], next_path: str, write: PendingWrite | None = None
) -> Response:
    """An interactive request for `scopes` by the signed-in person, coming back to `next_path`; the write
    (if any) rides along in the pending sign-in (sealed in its cookie, used once)."""
    session: Session | None = getattr(request.state, "session", None)
    if session is None:
        raise SignInRequired(next_path)
    asked = Incremental(session.user.oid, session.user.tid, write)
    return await c.signin.login(
        request, next_path, scopes=scopes, login_hint=session.user.username, extra=asked.to_dict()
    )


# zt: acquire-application-authorization-to-access-resources
async def finish(request: Request, c: Clients, pending: PendingSignIn, answer: dict[str, str]) -> Response:
    """Back from the consent prompt: do the waiting write (if any) once, for the user who asked."""
    asked = Incremental.from_dict(pending.extra)
    try:
        user, token_cache = await c.signin.redeem(pending, answer)
    except SignInFailed:
        if answer.get("error") in ("access_denied", "consent_required", "interaction_required"):
            # Refused at the prompt: the write is dropped with the flow, the session is untouched.
            asked_write = asked is not None and asked.write is not None and not asked.reauth
            declined = "/auth/declined" if asked_write else pending.next
            refused = RedirectResponse(declined, status_code=303)
            c.signin.clear_cookie(refused, c.signin.config.sign_in_cookie)
            return refused
        raise
    if asked is None or (user.oid, user.tid) != (asked.oid, asked.tid):
        raise SignInFailed(
            "Nothing was changed",
            "The permission was answered by a different account than the one that asked for it, "
            "so the waiting change was dropped. Sign in again with your own account.",
            status=403,
        )
    # A new session (rotation, as at every sign-in), holding the tokens that now include write.
    session = await c.signin.start_session(request, pending, user, token_cache)
    response: Response = RedirectResponse(pending.next, status_code=303)
    if asked.write is not None:
        try:
            got = await c.signin.tokens.acquire(session, list(c.settings.api_write_scopes))
            if got is None or got.token is None:
                raise ApiError(502, "No permission to write", "Write was granted but no token came with it.")
            await asked.write.perform(c.api, got.token)
            notices.tell(response, asked.write.action, secure=c.settings.cookie_secure)
        except ApiError as err:
            response = error_page(request, err.status, err.title, err.detail, retry="/tasks")
        except ClaimsChallenge:
            # zt: secure-with-cae
            # Challenged again straight after signing in: retried once already, so no loop; the person decides.
            response = error_page(request, 401, *NOT_DONE_AFTER_SIGN_IN, retry="/tasks")
    return c.signin.with_session(response, session)
