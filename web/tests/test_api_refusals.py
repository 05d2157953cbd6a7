"""What a person reads when the api refuses: the reason where the api gives one the person can act on, and
nothing else from the api's answer."""

from __future__ import annotations

import json

from web.api_client import _refusal

DEACTIVATED = {
    "error": "account_deactivated",
    "error_description": "<b>internal detail</b>",
    "correlation_id": "0123456789abcdef0123456789abcdef",
}


def test_a_deactivated_account_is_told_so() -> None:
    err = _refusal(403, json.dumps(DEACTIVATED).encode())
    assert err.status == 403 and err.title == "Your access was turned off"
    assert err.detail.startswith("Your access to this app was turned off by your organization")
    assert "internal detail" not in err.detail and "account_deactivated" not in err.detail


def test_any_other_403_stays_generic() -> None:
    for raw in (b"", b"not json", b"[]", json.dumps({"error": "insufficient_scope"}).encode()):
        err = _refusal(403, raw)
        assert err.title == "The api refused this request", raw
    # The code counts only on a 403: a 401 or 400 saying it is still what its status says.
    assert _refusal(400, json.dumps(DEACTIVATED).encode()).title == "The api did not accept this request"
