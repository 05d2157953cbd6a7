"""What the emulator remembers: sign-in sessions, codes, refresh tokens, device codes, consent.

Short-lived protocol state (codes, pending sign-ins, device codes, refresh tokens) lives in memory:
restarting the emulator is like a tenant-wide sign-out. Administrative state (consent, disabled
users, revocation times) is written to the state dir so a workshop keeps its setup across restarts.
Everything is touched only from the event loop (all handlers are async), so no locks are needed.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .stepup import OneTimeCode

UserRef = tuple[str, str]  # (tenant id, object id)
# Sign-ins in progress kept at most (each an anonymous authorization request until someone signs in).
MAX_PENDING = 10_000


def new_handle(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


@dataclass
class PendingSignIn:
    """An authorization request (or device-code approval) between the first page and the last."""

    id: str
    kind: str  # "authorize" | "device" | "adminconsent"
    path_tenant: str  # tenant segment as requested: a tenant id, "organizations" or "common"
    client_id: str
    scopes: list[str]
    redirect_uri: str = ""
    state: str | None = None
    nonce: str | None = None
    code_challenge: str = ""
    response_mode: str = "query"
    prompt: str | None = None
    login_hint: str | None = None
    claims: str | None = None
    device_code: str | None = None
    user: UserRef | None = None
    session_id: str | None = None
    created: float = field(default_factory=time.time)


@dataclass
class SignInSession:
    id: str
    user: UserRef
    auth_time: float  # fractional: a revocation in the same second must still order correctly
    # Authentication contexts met in this session (stepup.py): context id -> when.
    contexts: dict[str, float] = field(default_factory=dict)


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    user: UserRef
    scopes: list[str]
    code_challenge: str
    nonce: str | None
    claims: str | None
    auth_time: float  # fractional: a revocation in the same second must still order correctly
    session_id: str
    family: str
    expires: float
    redeemed: bool = False


@dataclass
class RefreshGrant:
    client_id: str
    user: UserRef
    auth_time: float  # fractional: a revocation in the same second must still order correctly
    family: str
    expires: float
    session_id: str | None = None


@dataclass
class DeviceGrant:
    device_code: str
    user_code: str
    client_id: str
    path_tenant: str
    scopes: list[str]
    claims: str | None
    expires: float
    status: str = "pending"  # pending | approved | declined | redeemed
    user: UserRef | None = None
    auth_time: float = 0.0


@dataclass
class AdminState:
    disabled: set[UserRef] = field(default_factory=set)
    tokens_valid_from: dict[UserRef, float] = field(default_factory=dict)
    # (tenant, user oid, client app id, resource app id) -> scopes the user consented to
    user_consent: dict[tuple[str, str, str, str], set[str]] = field(default_factory=dict)
    # (tenant, client app id, resource app id) -> delegated scopes an admin granted for everyone
    admin_consent: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)
    # (tenant, client app id, resource app id) -> app roles an admin granted the client
    admin_roles: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "disabled": sorted(list(u) for u in self.disabled),
            "tokens_valid_from": [[*k, v] for k, v in self.tokens_valid_from.items()],
            "user_consent": [[*k, sorted(v)] for k, v in self.user_consent.items()],
            "admin_consent": [[*k, sorted(v)] for k, v in self.admin_consent.items()],
            "admin_roles": [[*k, sorted(v)] for k, v in self.admin_roles.items()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AdminState:
        s = cls()
        s.disabled = {(t, o) for t, o in data.get("disabled", [])}
        s.tokens_valid_from = {(t, o): v for t, o, v in data.get("tokens_valid_from", [])}
        s.user_consent = {(t, o, c, r): set(v) for t, o, c, r, v in data.get("user_consent", [])}
        s.admin_consent = {(t, c, r): set(v) for t, c, r, v in data.get("admin_consent", [])}
        s.admin_roles = {(t, c, r): set(v) for t, c, r, v in data.get("admin_roles", [])}
        return s


class Store:
    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / "admin-state.json"
        self.pending: dict[str, PendingSignIn] = {}
        self.sessions: dict[str, SignInSession] = {}
        self.codes: dict[str, AuthCode] = {}
        self.refresh: dict[str, RefreshGrant] = {}
        self.devices: dict[str, DeviceGrant] = {}
        self.one_time_codes: dict[str, OneTimeCode] = {}  # pending sign-in id -> its second factor
        self.admin = AdminState.from_json(json.loads(self._path.read_text())) if self._path.exists() else AdminState()
        self.token_requests = 0
        self.key_set_requests = 0

    def save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.admin.to_json(), indent=1))
        os.replace(tmp, self._path)

    def discard(self) -> None:
        """Forget the administrative state on file (the workshop's reset); this store is not used again."""
        self._path.unlink(missing_ok=True)

    def prune(self, now: float, pending_ttl: float) -> None:
        """Drop what has expired, so a long-running emulator doesn't grow without bound."""
        self.pending = {k: v for k, v in self.pending.items() if now - v.created < pending_ttl}
        if len(self.pending) > MAX_PENDING:
            # Anyone can open an authorization request: a flood of them keeps only the newest.
            self.pending = dict(list(self.pending.items())[-MAX_PENDING:])
        self.codes = {k: v for k, v in self.codes.items() if v.expires > now - 600}
        self.refresh = {k: v for k, v in self.refresh.items() if v.expires > now}
        self.devices = {k: v for k, v in self.devices.items() if v.expires > now - 600}
        self.one_time_codes = {k: v for k, v in self.one_time_codes.items() if v.expires > now}

    def revoke_family(self, family: str) -> None:
        self.refresh = {k: v for k, v in self.refresh.items() if v.family != family}

    def end_sessions(self, user: UserRef) -> None:
        self.sessions = {k: v for k, v in self.sessions.items() if v.user != user}
