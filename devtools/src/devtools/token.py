"""`zt token`: a user's access token for the api, obtained as Azure CLI does (device code flow).

The CLI registration is a public client pre-authorized on the api. The "person at the browser"
who approves the device code is played by this command itself, with the demo password from
`.local/stack.json`, so a workshop gets a token for curl in one step.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import msal
import requests

from devtools.signin import FormBrowser, SignInError


class TokenError(RuntimeError):
    """Something a person can act on; printed without a traceback."""


def load_stack(stack_file: Path) -> dict[str, Any]:
    if not stack_file.exists():
        raise TokenError(f"{stack_file} not found: start the stack first with `make run` (in another terminal).")
    stack: dict[str, Any] = json.loads(stack_file.read_text())
    return stack


def device_code_token(stack: dict[str, Any], user: str, scopes: list[str] | None = None, *, quiet: bool = False) -> str:
    if user.lower() not in (u.lower() for u in stack["demo_users"]):
        raise TokenError(f"{user!r} is not a demo user; try one of: {', '.join(stack['demo_users'])}")
    # Trust the stack's dev CA (the bundle holds the system CAs too) for this client only, so the
    # calling process's own environment is left as it was.
    http = requests.Session()
    http.verify = stack["ca_bundle"]
    http.trust_env = False
    try:
        app = msal.PublicClientApplication(
            stack["cli_client_id"], authority=stack["authority"], instance_discovery=False, http_client=http
        )
        flow = app.initiate_device_flow(scopes=scopes or stack["api_scopes"])
    except (ValueError, OSError) as exc:  # discovery failed: emulator down or not trusted
        raise TokenError(f"cannot reach the identity provider at {stack['authority']}: {exc}") from None
    if "user_code" not in flow:
        raise TokenError(f"device code request refused: {flow.get('error_description', flow)}")
    if not quiet:
        print(flow["message"], file=sys.stderr)
    browser = FormBrowser(httpx.Client(follow_redirects=False, timeout=10))
    try:
        page = browser.approve_device(flow["verification_uri"], flow["user_code"], user, stack["demo_password"])
    except (SignInError, httpx.HTTPError) as exc:
        raise TokenError(f"approving the device code failed: {exc}") from None
    finally:
        browser.close()
    if page.status_code != 200:
        raise TokenError(f"the sign-in page refused {user}: HTTP {page.status_code}")
    result = app.acquire_token_by_device_flow(flow, exit_condition=lambda f: True)
    if "access_token" not in result:
        raise TokenError(f"{result.get('error')}: {result.get('error_description', '')}".strip())
    token: str = result["access_token"]
    return token
