"""App-only tokens: a service calling another as itself (client credentials), with no user.

# zt: developer-strategy-application-permissions
Only for routes that are themselves app-only (a daemon's tenant report, the provisioning
service's SCIM calls): a request made for a signed-in user always goes on-behalf-of that user
(zerotrust.onbehalf), so the next tier sees who the user is and never more than the user may do.
Using this client on a user's behalf would turn the user's request into the application's,
with every record of the tenant in reach: that is the confused deputy this split prevents.

The credential is the workload's managed identity, used as a federated credential (no secret).
The token is asked for in the tenant the caller belongs to (`tenant_id`), so the next tier, which
filters by the token's `tid`, can only ever answer about that tenant. MSAL caches app tokens in
its own token cache and renews them before expiry; calls run in a worker thread (MSAL is sync).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import msal
import msal.exceptions

from .credentials import ConfidentialApps


@dataclass(frozen=True)
class AppOnlyFailure(Exception):
    """No app-only token: `description` is what the caller hears (a 503: nothing they can fix)."""

    description: str
    token_service_error: str = ""

    def __str__(self) -> str:
        return f"{self.token_service_error or 'unreachable'}: {self.description}"


class AppOnlyClient:
    def __init__(self, apps: ConfidentialApps) -> None:
        """`apps`: the service's MSAL apps (its client id and credential), shared with its on-behalf-of."""
        self._msal = apps
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._lock = threading.Lock()
        self.token_endpoint_calls = 0

    async def token(self, tenant_id: str, scope: str) -> str:
        """A token for `scope` (a resource's `/.default`) in `tenant_id`, from MSAL's cache when it can."""
        try:
            return await anyio.to_thread.run_sync(self._acquire, tenant_id, scope)
        except (OSError, ValueError):  # MSAL raises these when the provider can't be reached
            raise AppOnlyFailure("The token service can't be reached.") from None
        except msal.exceptions.MsalServiceError:  # the token service answered with a server error (5xx)
            raise AppOnlyFailure("The token service refused or failed.") from None

    def _app_for(self, tenant_id: str) -> msal.ConfidentialClientApplication:
        with self._lock:
            app = self._apps.get(tenant_id)
            if app is None:
                app = self._msal.new(tenant_id)
                self._apps[tenant_id] = app
            return app

    def _acquire(self, tenant_id: str, scope: str) -> str:
        result: dict[str, Any] = self._app_for(tenant_id).acquire_token_for_client([scope])
        if "access_token" not in result:
            raise AppOnlyFailure("The token service refused or failed.", str(result.get("error", "unknown")))
        if result.get("token_source") == "identity_provider":
            self.token_endpoint_calls += 1
        return str(result["access_token"])


__all__ = ["AppOnlyClient", "AppOnlyFailure"]
