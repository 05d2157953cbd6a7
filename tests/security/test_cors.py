"""No tier lets another site's scripts read its answers: no CORS headers for any origin, preflights
included. The web app is a backend-for-frontend (its pages are same-origin) and the APIs are called by
servers, so there is no origin to allow; a browser on another site gets nothing it may read.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.launch import RunningStack
from tests.support.tokens import Api, Issuer

pytestmark = pytest.mark.guidance("protect-api")

EVIL = "https://evil.example"


@pytest.mark.parametrize(("tier", "path"), [("web", "/tasks"), ("api", "/tasks"), ("downstream_api", "/records")])
def test_a_preflight_from_another_site_is_not_allowed(
    stack: RunningStack, http: httpx.Client, tier: str, path: str
) -> None:
    r = http.options(
        f"{stack.info[tier]}{path}",
        headers={
            "Origin": EVIL,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code in (401, 405), r.status_code  # no route answers OPTIONS; the APIs ask for a token first
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]


@pytest.mark.parametrize("name", ["api", "downstream-api"])
def test_a_cross_site_read_with_a_valid_token_gets_no_cors_grant(
    http: httpx.Client, issuer: Issuer, targets: dict[str, Api], name: str
) -> None:
    api = targets[name]
    r = http.get(api.url(), headers={"Origin": EVIL, "Authorization": f"Bearer {issuer.token(api)}"})
    assert r.status_code == 200
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]
