"""A validated token is remembered by its hash until it expires, and never past its expiry or its key.

The cache is what lets every tier validate every token without paying for it twice: these are the ways a
remembered result could outlive what a full check would say, each tried on a token validated before.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from zerotrust.keyset import KeySet
from zerotrust.tokens import InvalidToken, TokenPolicy, TokenValidator

from tests.support.tokens import STANDALONE_HOST, FakeProvider, Issuer, apis_at

pytestmark = pytest.mark.guidance("protect-api")

API = apis_at("https://unused.invalid", "https://unused.invalid")["api"]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _validator(provider: FakeProvider, clock: Clock, **keys: Any) -> TokenValidator:
    issuer = provider.issuer
    policy = TokenPolicy.for_authority(
        STANDALONE_HOST, API.app_id, tuple(issuer.tenants.values()), (API.caller,), leeway_seconds=0
    )
    key_set = KeySet(issuer.authority(), provider.fetch, **keys)
    return TokenValidator(policy, key_set, clock=clock)


def test_a_token_seen_again_is_not_validated_again_and_its_digest_is_kept_not_the_token() -> None:
    provider = FakeProvider(Issuer.standalone())
    token = provider.issuer.token(API)
    validator = _validator(provider, Clock(0))
    first = asyncio.run(validator.validate(token))
    assert asyncio.run(validator.validate(token)) is first  # the same result, not a second check
    assert list(validator._validated) == [hashlib.sha256(token.encode()).digest()]


def test_a_cached_token_past_its_expiry_is_refused() -> None:
    provider = FakeProvider(Issuer.standalone())
    token = provider.issuer.token(API)
    exp = int(jwt.decode(token, options={"verify_signature": False})["exp"])
    clock = Clock(exp - 10)
    validator = _validator(provider, clock)
    asyncio.run(validator.validate(token))
    clock.now = exp + 1
    with pytest.raises(InvalidToken, match="expired"):
        asyncio.run(validator.validate(token))


def test_a_cached_token_whose_key_is_withdrawn_is_refused_once_the_key_set_is_read_again() -> None:
    issuer = Issuer.standalone()
    provider = FakeProvider(issuer)
    token = issuer.token(API)
    validator = _validator(provider, Clock(0), max_age=0.0, refresh_interval=0.0)
    asyncio.run(validator.validate(token))
    # The provider withdraws the key: its set now holds another one only.
    issuer._loaded = {"other-kid": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
    with pytest.raises(InvalidToken, match="signing key is not recognised"):
        asyncio.run(validator.validate(token))


def test_the_cache_is_bounded_and_per_validator() -> None:
    provider = FakeProvider(Issuer.standalone())
    validator = _validator(provider, Clock(0))
    validator.cache_size = 3
    tokens = [provider.issuer.token(API) for _ in range(5)]
    for token in tokens:
        asyncio.run(validator.validate(token))
    assert len(validator._validated) == 3
    # Another API's validator (another audience) knows none of them.
    other = _validator(provider, Clock(0))
    assert not other._validated
