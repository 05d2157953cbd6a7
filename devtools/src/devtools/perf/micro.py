"""What one validation costs: a token seen before (cached), one seen for the first time (in full), and the
RSA signature check alone with `cryptography`, the floor under any validation. Measured in this process."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from devtools.perf.layers import layer_costs
from devtools.perf.stack import Stack
from zerotrust.hops import hop_session
from zerotrust.keyset import KeySet, fetch_json
from zerotrust.tokens import TokenPolicy, TokenValidator

CALLS = 2000


def _per_call_us(seconds: float, calls: int) -> float:
    return seconds / calls * 1e6


async def _costs(stack: Stack, token: str) -> dict[str, float]:
    claims = jwt.decode(token, options={"verify_signature": False})
    tenants = tuple(stack.info["tenants"].values())
    host = str(stack.info["emulator"])
    policy = TokenPolicy.for_authority(host, str(claims["aud"]), tenants, (str(claims["azp"]),))
    async with hop_session(None) as http:
        keys = KeySet(str(stack.info["authority"]), fetch_json(http), max_age=3600, refresh_interval=3600)
        cached, full = TokenValidator(policy, keys), TokenValidator(policy, keys, cache_size=0)
        await cached.validate(token)
        await full.validate(token)
        started = time.perf_counter()
        for _ in range(CALLS):
            await cached.validate(token)
        cached_us = _per_call_us(time.perf_counter() - started, CALLS)
        started = time.perf_counter()
        for _ in range(CALLS // 4):
            await full.validate(token)
        full_us = _per_call_us(time.perf_counter() - started, CALLS // 4)
        public_key: Any = await keys.key(str(jwt.get_unverified_header(token)["kid"]))
        layers = await layer_costs(cached, token)
    signing_input, _, signature = token.rpartition(".")
    raw_signature, message = jwt.utils.base64url_decode(signature), signing_input.encode()
    started = time.perf_counter()
    for _ in range(CALLS):
        public_key.verify(raw_signature, message, padding.PKCS1v15(), hashes.SHA256())
    raw_us = _per_call_us(time.perf_counter() - started, CALLS)
    return {"cached_us": cached_us, "full_us": full_us, "raw_rs256_us": raw_us, **layers}


def validation_costs(stack: Stack, token: str) -> dict[str, float]:
    try:
        return asyncio.run(_costs(stack, token))
    except aiohttp.ClientError as exc:
        raise RuntimeError(f"the key set could not be read: {exc}") from None
