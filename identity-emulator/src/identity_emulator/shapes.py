"""The types of the claims the emulator reads from a token it is handed (an on-behalf-of assertion, a client
assertion, a Graph bearer token): a claim of another type makes the token malformed.

A valid signature says who signed, not that the claims are what the reader expects: a list where a string
belongs (`aud`), a number for the issuer, an object for the scopes. Entra answers such a token as it answers
any malformed one (AADSTS50027, "JWT token is invalid or malformed"), never with a server error; so does the
emulator, before any claim is used.
"""

from __future__ import annotations

from typing import Any

STRINGS = ("iss", "tid", "oid", "sub", "azp", "appid", "scp", "idtyp", "uti", "ver")
STRING_LISTS = ("roles", "groups", "xms_cc", "acrs", "amr", "wids")
NUMBERS = ("exp", "nbf", "iat", "auth_time")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def well_formed(claims: dict[str, Any], *, audience_list: bool = False) -> bool:
    """Every claim the emulator reads, where present, of its type; `aud` one string (an access token's), or
    with `audience_list` also a list of strings (a client assertion may name several)."""
    aud = claims.get("aud")
    if "aud" in claims and not (isinstance(aud, str) or (audience_list and _strings(aud) and bool(aud))):
        return False
    return (
        all(isinstance(claims[name], str) for name in STRINGS if name in claims)
        and all(_strings(claims[name]) for name in STRING_LISTS if name in claims)
        and all(_number(claims[name]) for name in NUMBERS if name in claims)
    )
