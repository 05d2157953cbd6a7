"""The identity emulator's admin endpoints, called as its demo administrator.

# zt: permissions-require-admin-consent
The admin view answers only an administrator (identity_emulator/admin_auth.py). A script is one the way
an admin script is one with Entra: it signs the demo administrator in (device code flow, approved by
devtools.signin as `zt token` does) and presents the Microsoft Graph token it gets, whose scope is
Directory.AccessAsUser.All and whose `wids` name the person's directory roles. One token per emulator
is kept for the process; a refused one (expired, or signed with a key since withdrawn) is replaced once.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from devtools.token import device_code_token

ADMIN_SCOPES = ["https://graph.microsoft.com/Directory.AccessAsUser.All"]
_tokens: dict[str, str] = {}  # the emulator's authority -> the administrator's token
_lock = threading.Lock()


class EmulatorAdmin:
    """`info`: stack.json, or the emulator's part of it (identity_emulator.stack.stack_info)."""

    def __init__(self, info: Mapping[str, Any], ca_bundle: str | Path | None = None) -> None:
        self.info = {**info, "ca_bundle": str(ca_bundle or info["ca_bundle"])}
        self.front = str(info["emulator_front_channel"])

    def token(self, *, fresh: bool = False) -> str:
        key = str(self.info["authority"])
        with _lock:
            if fresh or key not in _tokens:
                _tokens[key] = device_code_token(
                    self.info, str(self.info["demo_administrator"]), ADMIN_SCOPES, quiet=True
                )
            return _tokens[key]

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """`path` on the front channel (e.g. /admin/stats), with the administrator's bearer token."""
        token = self.token()
        extra = kwargs.pop("headers", {})
        for retry in (False, True):
            headers = {"Accept": "application/json", **extra, "Authorization": f"Bearer {token}"}
            response = httpx.request(method, f"{self.front}{path}", headers=headers, timeout=10, **kwargs)
            if response.status_code != 401 or retry:
                return response
            token = self.token(fresh=True)
        return response

    def get(self, path: str) -> Any:
        response = self.request("GET", path)
        response.raise_for_status()
        return response.json()

    def post(self, action: str, **form: str) -> dict[str, Any]:
        """An admin action (e.g. users/disable, upn=...): its JSON answer; raises on a refusal."""
        response = self.request("POST", f"/admin/{action}", data=form)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def stats(self) -> dict[str, int]:
        answer: dict[str, int] = self.get("/admin/stats")
        return answer
