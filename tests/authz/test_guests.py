"""Guests are limited (article 17, "block or limit guests"): gwen@fabrikam.test is a B2B guest in contoso.

The api decides from the validated token's `acct` claim (1: a guest): she keeps her own tasks, but the
organization view and sharing with a group answer 403 insufficient_scope, as any permission the token
lacks; a member with the same token shape passes; an `acct` that is not an integer is an invalid token
(401), never a 500. Last, gwen signs in for real through the emulator: her token says guest, contoso's
tid and issuer, fabrikam as `idp`, and the api limits her.
"""

from __future__ import annotations

import httpx
import jwt
import pytest

from tests.authz.chain import ALICE, CONTOSO, EVERYONE_AT_CONTOSO, FABRIKAM, STEPPED_UP, Chain, Person

pytestmark = pytest.mark.guidance("zero-trust-token-customization")

GWEN = Person("gwen@fabrikam.test", "0b7d2f4e-8a61-4c39-9e52-6f1a3b8c7d90", CONTOSO, "Gwen Green (guest)")
GUEST_REFUSED = "Guests of this organization may keep their own tasks but not see or share with the organization."
GUEST_CHALLENGE = f'Bearer realm="api", error="insufficient_scope", error_description="{GUEST_REFUSED}"'
INVALID_CHALLENGE = 'Bearer realm="api", error="invalid_token", error_description="The access token is invalid."'
# As Entra sends them for a guest from another Entra tenant.
AS_GUEST = {"acct": 1, "idp": f"https://sts.windows.net/{FABRIKAM}/"}


def _refused_as_guest(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["www-authenticate"] == GUEST_CHALLENGE
    assert response.json() == {"error": "insufficient_scope", "error_description": GUEST_REFUSED}


def test_a_guest_is_refused_the_organization_view_a_member_is_not(chain: Chain) -> None:
    guest = chain.user_token("api", GWEN, scp="Tasks.Read.All", **AS_GUEST)
    _refused_as_guest(chain.call("api", "GET", "/org/tasks", guest))
    member = chain.user_token("api", ALICE, scp="Tasks.Read.All", acct=0)
    assert chain.call("api", "GET", "/org/tasks", member).status_code == 200
    # No acct claim at all (a registration that does not ask for it): not taken for a guest.
    assert (
        chain.call("api", "GET", "/org/tasks", chain.user_token("api", ALICE, scp="Tasks.Read.All")).status_code == 200
    )


def test_a_guest_keeps_her_own_tasks_but_may_not_share_with_a_group(chain: Chain) -> None:
    guest = chain.user_token("api", GWEN, **AS_GUEST, **STEPPED_UP)
    made = chain.call("api", "POST", "/tasks", guest, {"title": "gwen's own"})
    assert made.status_code == 201, made.text
    assert [t["title"] for t in chain.call("api", "GET", "/tasks", guest).json()] == ["gwen's own"]
    task = made.json()["id"]
    # Refused before the step-up is asked for: no second factor makes a guest a member.
    _refused_as_guest(chain.call("api", "PUT", f"/tasks/{task}/share", guest, {"group_id": EVERYONE_AT_CONTOSO}))
    # Stopping a share is no sharing: it stays hers to do.
    assert chain.call("api", "PUT", f"/tasks/{task}/share", guest, {"group_id": None}).status_code == 200
    member = chain.user_token("api", ALICE, acct=0, **STEPPED_UP)
    mine = chain.call("api", "POST", "/tasks", member, {"title": "alice shares"}).json()["id"]
    shared = chain.call("api", "PUT", f"/tasks/{mine}/share", member, {"group_id": EVERYONE_AT_CONTOSO})
    assert shared.status_code == 200, shared.text


@pytest.mark.parametrize("acct", ["1", True, 1.5, [1], {"guest": True}, "guest"])
def test_an_acct_that_is_not_an_integer_is_an_invalid_token_not_a_500(chain: Chain, acct: object) -> None:
    for method, path in (("GET", "/org/tasks"), ("GET", "/tasks")):
        token = chain.user_token("api", GWEN, scp="Tasks.Read.All Tasks.Read", acct=acct)
        r = chain.call("api", method, path, token)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == INVALID_CHALLENGE


def test_gwen_signs_in_through_the_emulator_as_a_guest_and_is_limited(chain: Chain) -> None:
    token = chain.signed_in(GWEN, capable=True)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["acct"] == 1 and claims["tid"] == CONTOSO and claims["oid"] == GWEN.oid
    assert claims["iss"].endswith(f"/{CONTOSO}/v2.0")
    assert claims["idp"] == f"https://sts.windows.net/{FABRIKAM}/"
    me = chain.call("api", "GET", "/me", token).json()
    assert me["api"]["account_type"] == "guest"
    made = chain.call("api", "POST", "/tasks", token, {"title": "signed in as a guest"})
    assert made.status_code == 201, made.text
    share = {"group_id": EVERYONE_AT_CONTOSO}
    _refused_as_guest(chain.call("api", "PUT", f"/tasks/{made.json()['id']}/share", token, share))
