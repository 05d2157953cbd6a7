"""`zt token`: a user's access token for the api, obtained as Azure CLI does (device code flow).

The CLI registration is a public client pre-authorized on the api. The "person at the browser"
who approves the device code is played by this command itself, with the demo password from
`.local/stack.json`, so a workshop gets a token for curl in one step: it says so, and asks the
person for nothing. When the identity provider refuses the sign-in, its own error (AADSTS code
and description) is passed on with what to do about it.
"""

from __future__ import annotations

import html
import json
import re
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
        # Not MSAL's "enter the code" message: no one needs to, this command approves the code itself.
        print(
            f"Signing in as {user} on the identity provider's device login page ({flow['verification_uri']}, "
            f"code {flow['user_code']}) for you, with the demo password; nothing to do.",
            file=sys.stderr,
        )
    browser = FormBrowser(httpx.Client(follow_redirects=False, timeout=10))
    try:
        page = browser.approve_device(flow["verification_uri"], flow["user_code"], user, stack["demo_password"])
    except (SignInError, httpx.HTTPError) as exc:
        raise TokenError(f"approving the device code failed: {exc}") from None
    finally:
        browser.close()
    if page.status_code != 200:
        raise TokenError(refusal(page.status_code, page.text, user, stack))
    result = app.acquire_token_by_device_flow(flow, exit_condition=lambda f: True)
    if "access_token" not in result:
        raise TokenError(f"{result.get('error')}: {result.get('error_description', '')}".strip())
    token: str = result["access_token"]
    return token


# The identity provider's own words on its error page: "AADSTS<code>: <description>".
_AADSTS = re.compile(r"AADSTS(\d+): ([^<]+)")
# What a person can do about the refusals a demo user can meet here.
_WHAT_TO_DO = {
    50020: "{user} is in another tenant than the CLI's registration, which is single-tenant (its home tenant "
    "only, in multi-tenant mode too: `make run TENANTS=...` opens the web app and the APIs, not the CLI). "
    "Sign {user} in on the web app instead, or take a home-tenant user's token: `make token USER={home}`.",
    50057: "The account is disabled: enable it again in the emulator's admin view ({admin}).",
    50105: "{user} is not assigned to the app (identity-emulator/demo/directory.yaml `assigned`): pick another user.",
    50126: "The demo password in stack.json is not the emulator's: restart the stack (`make run`).",
    50053: "Too many failed sign-ins: wait for the lockout to end and try again.",
}


def refusal(status: int, page: str, user: str, stack: dict[str, Any]) -> str:
    """The sign-in page's refusal as the identity provider worded it, and what to do."""
    found = _AADSTS.search(page)
    if found is None:
        return f"the sign-in page refused {user} (HTTP {status}) without an AADSTS code"
    code, description = int(found.group(1)), " ".join(html.unescape(found.group(2)).split())
    domain = user.rpartition("@")[2].lower()
    home = next((u for u in stack["demo_users"] if u.rpartition("@")[2].lower() != domain), stack["demo_users"][0])
    advice = _WHAT_TO_DO.get(code, "See the AADSTS code in docs/identity-emulator.md or Microsoft Learn.")
    return f"the identity provider refused {user}: AADSTS{code}: {description}\n" + advice.format(
        user=user, home=home, admin=stack.get("emulator_admin", "/admin")
    )
