"""Continuous access evaluation as Entra ID does it, for the resources that take part (here, Graph).

# zt: secure-with-cae
A client that declares the cp1 capability (MSAL's `client_capabilities=["CP1"]`, sent as `xms_cc` in the
`claims` request) gets tokens marked `xms_cc: ["cp1"]`. A CAE resource re-evaluates every request made with
such a token against the user's critical events (sessions revoked, account disabled or deleted) and answers
a token older than the last one with 401 `error="insufficient_claims"` and a `claims` request for a token
issued after it. The token endpoint takes that `claims` request on any grant; where only a fresh sign-in
can satisfy it (the grant itself predates the event), it answers `interaction_required` with the claims
for the client to pass on. In Entra the resource learns of an event within minutes (Graph: near
real time for revocation); here at once.
"""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core import Emulator


def capable(xms_cc: Any) -> bool:
    """`xms_cc` of a token (a list) names cp1, however cased (MSAL sends "CP1")."""
    return isinstance(xms_cc, list) and any(str(value).lower() == "cp1" for value in xms_cc)


def claims_request(since: float) -> str:
    """Entra's claims request for a token issued after `since` (a JSON string, as clients send it back)."""
    return json.dumps({"access_token": {"nbf": {"essential": True, "value": str(int(since))}}}, separators=(",", ":"))


def requested_nbf(claims: str | None) -> float | None:
    """The `nbf` a `claims` request demands, if any."""
    try:
        value = json.loads(claims or "null")["access_token"]["nbf"]["value"]
        return float(value)
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


def critical_event(emu: Emulator, tenant_id: str, object_id: str, issued_at: float) -> float | None:
    """When the user's last critical event after `issued_at` happened (None: none since)."""
    ref = (tenant_id, object_id)
    if ref in emu.store.admin.disabled or emu.directory.user_by_oid(tenant_id, object_id) is None:
        return time.time()
    valid_from = emu.store.admin.tokens_valid_from.get(ref)
    return valid_from if valid_from is not None and issued_at < valid_from else None


def challenge(emu: Emulator, resource_app_id: str, since: float) -> str:
    """The WWW-Authenticate value a CAE resource answers (Entra's format: the claims base64-encoded)."""
    encoded = base64.b64encode(claims_request(since).encode()).decode()
    return (
        f'Bearer realm="", authorization_uri="{emu.settings.issuer_base}/common/oauth2/authorize", '
        f'client_id="{resource_app_id}", error="insufficient_claims", claims="{encoded}"'
    )
