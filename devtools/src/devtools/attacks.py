"""A catalogue of attacks on a bearer-token API, each with the rule that must stop it.

Shared by the attack suite (tests/security), `make scorecard` (pointed at any deployment) and the web
app's attack lab (devtools.firing sends them). Every attack here is non-destructive and needs only what
any caller has: one valid token for the target, and the identity provider's published key set. Attacks
that need the provider's private key (an expired but validly signed token, a missing claim) live in the
tests, which own their local identity provider.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

Headers = dict[str, str]


@dataclass
class AttackContext:
    """What an attacker (or the scorecard) holds: a real token for the target, the public key set,
    and optionally a real token minted for a different API."""

    valid_token: str
    jwks: dict[str, Any]
    other_audience_token: str | None = None
    _rsa: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    _ec: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def header(self) -> dict[str, Any]:
        return dict(jwt.get_unverified_header(self.valid_token))

    @property
    def claims(self) -> dict[str, Any]:
        return dict(jwt.decode(self.valid_token, options={"verify_signature": False}))

    def attacker_signed(self, claims: dict[str, Any] | None = None, **header: Any) -> str:
        """Signed with a key the attacker made, naming the real `kid` unless told otherwise."""
        headers = {"kid": self.header.get("kid"), **header}
        return jwt.encode(claims or self.claims, self._rsa, algorithm="RS256", headers=headers)

    def public_pem(self) -> bytes:
        """The provider's real public key (from its key set) as PEM: the classic HS256 confusion input."""
        kid = self.header.get("kid")
        jwk = next((k for k in self.jwks.get("keys", []) if k.get("kid") == kid), None)
        if jwk is None:
            jwk = self.jwks["keys"][0]
        public = jwt.PyJWK({"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}, "RS256").key
        return bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def attacker_jwk(self) -> dict[str, Any]:
        return dict(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._rsa.public_key())))


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def _unsigned(ctx: AttackContext, alg: str) -> str:
    return f"{_b64({**ctx.header, 'alg': alg})}.{_b64(ctx.claims)}."


def _bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Attack:
    id: str
    title: str
    rule: str  # the check that must stop it, in words a workshop can read out
    build: Callable[[AttackContext], Headers]
    status: int = 401
    error: str | None = "invalid_token"  # the RFC 6750 error attribute expected, None for a bare challenge
    needs_other_audience: bool = False
    params: Callable[[AttackContext], dict[str, str]] | None = None


def _hs256_with_public_key(ctx: AttackContext) -> Headers:
    # PyJWT refuses to HMAC with something that looks like a PEM key, as it should; the attacker
    # builds the MAC by hand, which is exactly what a vulnerable validator would accept.
    import hashlib
    import hmac

    signing_input = f"{_b64({**ctx.header, 'alg': 'HS256'})}.{_b64(ctx.claims)}"
    mac = hmac.new(ctx.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return _bearer(f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}")


def _tamper(ctx: AttackContext, **changes: Any) -> Headers:
    header, _, signature = ctx.valid_token.split(".")
    return _bearer(f"{header}.{_b64({**ctx.claims, **changes})}.{signature}")


ATTACKS: list[Attack] = [
    Attack(
        "no-credentials",
        "No Authorization header",
        "A request without credentials gets a bare challenge: 401 with the realm and no error code (RFC 6750 3.1).",
        lambda ctx: {},
        error=None,
    ),
    Attack(
        "basic-scheme",
        "Basic credentials instead of a bearer token",
        "Only the Bearer scheme is read; anything else counts as no credentials.",
        lambda ctx: {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="},
        error=None,
    ),
    Attack(
        "token-in-query",
        "Token in the URL query",
        "Tokens are read from the Authorization header only, never from URLs that end up in logs and Referer headers.",
        lambda ctx: {},
        error=None,
        params=lambda ctx: {"access_token": ctx.valid_token},
    ),
    Attack(
        "token-in-cookie",
        "Token in a cookie",
        "Tokens are read from the Authorization header only; a cookie would ride along on cross-site requests.",
        lambda ctx: {"Cookie": f"access_token={ctx.valid_token}"},
        error=None,
    ),
    Attack(
        "empty-bearer",
        "Bearer scheme with no token",
        "A malformed Authorization header is a bad request.",
        lambda ctx: {"Authorization": "Bearer"},
        status=400,
        error="invalid_request",
    ),
    Attack(
        "two-tokens",
        "Two tokens in one header",
        "Exactly one token per request.",
        lambda ctx: _bearer(f"{ctx.valid_token} {ctx.valid_token}"),
        status=400,
        error="invalid_request",
    ),
    Attack(
        "not-a-jwt",
        "A random string as token",
        "The token must parse as a JWS before anything else.",
        lambda ctx: _bearer(secrets.token_urlsafe(40)),
    ),
    Attack(
        "alg-none",
        "alg: none (unsigned)",
        "Only RS256 is accepted; the algorithm comes from the allowlist, never from the token.",
        lambda ctx: _bearer(_unsigned(ctx, "none")),
    ),
    Attack(
        "alg-None",
        "alg: None",
        "The allowlist comparison is exact; no case games.",
        lambda ctx: _bearer(_unsigned(ctx, "None")),
    ),
    Attack(
        "alg-NONE",
        "alg: NONE",
        "The allowlist comparison is exact; no case games.",
        lambda ctx: _bearer(_unsigned(ctx, "NONE")),
    ),
    Attack(
        "alg-nOnE",
        "alg: nOnE",
        "The allowlist comparison is exact; no case games.",
        lambda ctx: _bearer(_unsigned(ctx, "nOnE")),
    ),
    Attack(
        "hs256-public-key",
        "HS256 signed with the provider's public key",
        "An RSA public key is never used as an HMAC secret: the algorithm is fixed to RS256.",
        _hs256_with_public_key,
    ),
    Attack(
        "es256-attacker",
        "ES256 signed by the attacker",
        "Algorithms outside the allowlist are refused.",
        lambda ctx: _bearer(jwt.encode(ctx.claims, ctx._ec, algorithm="ES256", headers={"kid": ctx.header["kid"]})),
    ),
    Attack(
        "ps256-attacker",
        "PS256 signed by the attacker",
        "Algorithms outside the allowlist are refused.",
        lambda ctx: _bearer(jwt.encode(ctx.claims, ctx._rsa, algorithm="PS256", headers={"kid": ctx.header["kid"]})),
    ),
    Attack(
        "forged-signature",
        "Right kid, attacker's key",
        "The signature is checked with the provider's key for that kid.",
        lambda ctx: _bearer(ctx.attacker_signed()),
    ),
    Attack(
        "truncated-signature",
        "Signature cut short",
        "A damaged signature never verifies.",
        lambda ctx: _bearer(ctx.valid_token[:-12]),
    ),
    Attack(
        "stripped-signature",
        "Signature removed",
        "A token without a signature is refused.",
        lambda ctx: _bearer(ctx.valid_token.rsplit(".", 1)[0] + "."),
    ),
    Attack(
        "tampered-scopes",
        "Payload changed to add a scope",
        "Any change to the claims breaks the signature.",
        lambda ctx: _tamper(ctx, scp=(ctx.claims.get("scp", "") + " Tasks.ReadWrite Records.ReadWrite").strip()),
    ),
    Attack(
        "tampered-user",
        "Payload changed to another user's oid",
        "Any change to the claims breaks the signature.",
        # A fresh random oid: never the token's own, whoever's token the attacker holds.
        lambda ctx: _tamper(ctx, oid=str(uuid.uuid4())),
    ),
    Attack(
        "tampered-expiry",
        "Payload changed to live for a year",
        "Any change to the claims breaks the signature.",
        lambda ctx: _tamper(ctx, exp=int(ctx.claims["exp"]) + 365 * 86400),
    ),
    Attack(
        "unknown-kid",
        "A kid the provider never published",
        "Unknown keys are looked up in the provider's key set (rate-limited), never trusted.",
        lambda ctx: _bearer(ctx.attacker_signed(kid=secrets.token_urlsafe(12))),
    ),
    Attack(
        "no-kid",
        "No kid at all",
        "A token must name one of the provider's keys.",
        lambda ctx: _bearer(jwt.encode(ctx.claims, ctx._rsa, algorithm="RS256")),
    ),
    Attack(
        "kid-traversal",
        "kid with a path traversal",
        "The kid is only a lookup key in the fetched key set.",
        lambda ctx: _bearer(ctx.attacker_signed(kid="../../../../dev/null")),
    ),
    Attack(
        "jwk-injection",
        "Attacker's key embedded in the header (jwk)",
        "Keys in the token header are ignored: keys come from the provider's key set only (RFC 8725 3.10).",
        lambda ctx: _bearer(ctx.attacker_signed(jwk=ctx.attacker_jwk())),
    ),
    Attack(
        "jku-injection",
        "Key set URL in the header (jku)",
        "Header URLs are never fetched.",
        lambda ctx: _bearer(ctx.attacker_signed(jku="https://attacker.invalid/jwks.json")),
    ),
    Attack(
        "x5u-injection",
        "Certificate URL in the header (x5u)",
        "Header URLs are never fetched.",
        lambda ctx: _bearer(ctx.attacker_signed(x5u="https://attacker.invalid/cert.pem")),
    ),
    Attack(
        "x5c-injection",
        "Certificate chain in the header (x5c)",
        "Certificates in the token header are ignored.",
        lambda ctx: _bearer(ctx.attacker_signed(x5c=["MIIBattacker"])),
    ),
    Attack(
        "oversized",
        "A 20 KB token",
        "Tokens over 16 KiB are refused before any parsing or cryptography.",
        lambda ctx: _bearer(ctx.attacker_signed({**ctx.claims, "pad": "A" * 20_000})),
    ),
    Attack("two-dots-only", "..", "A token of the wrong shape is refused.", lambda ctx: _bearer("..")),
    Attack(
        "header-not-json",
        "Header that isn't JSON",
        "A token of the wrong shape is refused.",
        lambda ctx: _bearer("bm90IGpzb24." + ctx.valid_token.split(".", 1)[1]),
    ),
    Attack(
        "audience-confusion",
        "A real token for the other API",
        "The audience must be this API's own id: a token for another API is never accepted (and never relayed).",
        lambda ctx: _bearer(ctx.other_audience_token or ""),
        needs_other_audience=True,
    ),
]
