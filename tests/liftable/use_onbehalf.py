"""On-behalf-of with the lifted unit alone (onbehalf.py + credentials.py): a token for the next API on the
user's behalf, reused while it is fresh, and a refusal mapped to what the caller should hear. MSAL runs
unmodified; only its HTTP client is a stand-in for the token service."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from lifted.credentials import ConfidentialApps
from lifted.onbehalf import OboError, OnBehalfOf

HOST, TENANT = "https://idp.test", "11111111-2222-4333-8444-555555555555"


@dataclass
class Reply:
    status_code: int
    body: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    @property
    def text(self) -> str:
        return json.dumps(self.body)


class TokenService:
    """What MSAL asks of the identity provider: discovery, then the token endpoint."""

    def __init__(self) -> None:
        self.grants: list[dict[str, Any]] = []
        self.refuse: dict[str, Any] | None = None

    def get(self, url: str, **_: Any) -> Reply:
        authority = url.removesuffix("/v2.0/.well-known/openid-configuration")
        return Reply(
            200,
            {
                "issuer": f"{authority}/v2.0",
                "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
                "token_endpoint": f"{authority}/oauth2/v2.0/token",
            },
        )

    def post(self, url: str, data: dict[str, Any] | None = None, **_: Any) -> Reply:
        self.grants.append(dict(data or {}))
        if self.refuse is not None:
            return Reply(400, self.refuse)
        return Reply(200, {"token_type": "Bearer", "access_token": f"obo-{len(self.grants)}", "expires_in": 3600})

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class User:
    tid: str
    oid: str

    @property
    def user_key(self) -> str:
        return f"{self.oid}.{self.tid}"


async def main() -> None:
    service = TokenService()
    credential = {"client_assertion": lambda: "assertion"}
    apps = ConfidentialApps("my-api", HOST, credential, instance_discovery=False, http_client=service)
    obo = OnBehalfOf(apps)
    alice = User(TENANT, "alice")
    first = await obo.token(alice, "alices-token", ["api://next/Records.Read"])
    again = await obo.token(alice, "alices-token", ["api://next/Records.Read"])
    assert first == again == "obo-1" and len(service.grants) == 1
    grant = service.grants[0]
    assert grant["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer" and grant["assertion"] == "alices-token"
    assert grant["requested_token_use"] == "on_behalf_of" and grant["client_assertion"] == "assertion"
    service.refuse = {"error": "invalid_grant", "error_description": "AADSTS50173: revoked", "error_codes": [50173]}
    try:
        await obo.token(User(TENANT, "bob"), "bobs-token", ["api://next/Records.Read"])
    except OboError as refused:
        assert (refused.status, refused.error) == (401, "invalid_token"), refused
    else:
        raise AssertionError("a refused exchange must raise OboError")
    service.refuse = {"error": "invalid_grant", "error_description": "AADSTS65001: consent", "error_codes": [65001]}
    try:
        await obo.token(User(TENANT, "carol"), "carols-token", ["api://next/Records.Read"])
    except OboError as refused:
        assert (refused.status, refused.error) == (403, "consent_required"), refused
    print("on-behalf-of: ok")


asyncio.run(main())
