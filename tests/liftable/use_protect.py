"""Protecting a FastAPI API with the lifted unit alone (tokens.py + protect.py): a valid token passes, and
each refusal is the RFC 6750 answer. Run in a project that has only the unit's declared packages."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI, Request
from lifted.asgi import request
from lifted.keyset import KeySet
from lifted.protect import Protection, install
from lifted.tokens import Principal, TokenPolicy, TokenValidator

AUTHORITY_HOST, TENANT, API, CLIENT = "https://idp.test", "11111111-2222-4333-8444-555555555555", "my-api", "my-app"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWK = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key())), "kid": "k1", "use": "sig"}


async def identity_provider(url: str) -> Any:
    """The provider's discovery document and key set, in process."""
    if url.endswith("/v2.0/.well-known/openid-configuration"):
        return {"jwks_uri": f"{AUTHORITY_HOST}/{TENANT}/discovery/v2.0/keys"}
    return {"keys": [JWK]}


def token(**changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": f"{AUTHORITY_HOST}/{TENANT}/v2.0", "aud": API, "tid": TENANT, "oid": "o1", "sub": "s1",
        "azp": CLIENT, "ver": "2.0", "scp": "Things.Read", "iat": now, "nbf": now, "exp": now + 600, **changes,
    }  # fmt: skip
    return jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "k1"})


validator = TokenValidator(
    TokenPolicy.for_authority(AUTHORITY_HOST, API, (TENANT,), (CLIENT,)),
    KeySet(f"{AUTHORITY_HOST}/{TENANT}", identity_provider),
)


async def get_validator(_request: Request) -> TokenValidator:
    return validator


protect = Protection(get_validator, realm="my-api")
Reader = Annotated[Principal, Depends(protect.scopes("Things.Read"))]
app = FastAPI()
install(app)


@app.get("/things")
async def things(user: Reader) -> dict[str, str]:
    return {"oid": user.oid}


async def main() -> None:
    ok = await request(app, "GET", "/things", headers={"Authorization": f"Bearer {token()}"})
    assert ok.status == 200 and json.loads(ok.body) == {"oid": "o1"}, (ok.status, ok.body)
    bare = await request(app, "GET", "/things")
    assert bare.status == 401 and bare.headers["www-authenticate"] == 'Bearer realm="my-api"'
    forged = token(aud="another-api")
    wrong = await request(app, "GET", "/things", headers={"Authorization": f"Bearer {forged}"})
    assert wrong.status == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert json.loads(wrong.body)["error"] == "invalid_token"
    narrow = token(scp="Other.Read")
    refused = await request(app, "GET", "/things", headers={"Authorization": f"Bearer {narrow}"})
    assert refused.status == 403 and 'scope="Things.Read"' in refused.headers["www-authenticate"]
    print("protect-fastapi-api: ok")


asyncio.run(main())
