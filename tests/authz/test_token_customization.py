"""Data keyed on oid + tid: renaming alice and changing her email changes nothing she can reach.

The emulator's admin view renames a user (UPN, which is also her email here, and display name) as
an administrator would; she signs in again with the new name and finds exactly her tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from devtools.token import TokenError, device_code_token

from tests.authz.chain import ALICE, BOB, start_chain
from tests.support.launch import LiveEmulator, LiveService

pytestmark = pytest.mark.guidance("zero-trust-token-customization")


def _sign_in(emulator: LiveEmulator, upn: str, known: list[str]) -> str:
    """A real token for the api: device code flow with MSAL, approved on the emulator's pages."""
    info = {**emulator.info, "ca_bundle": str(emulator.tls.ca_bundle), "demo_users": known}
    return device_code_token(info, upn)


def test_renamed_alice_signs_in_with_her_new_name_and_reaches_exactly_her_tasks(
    fresh_emulator: LiveEmulator, start_service: Callable[..., LiveService], tmp_path: Path
) -> None:
    chain = start_chain(fresh_emulator, start_service, tmp_path)
    users = list(fresh_emulator.info["demo_users"])
    before = _sign_in(fresh_emulator, "alice@contoso.test", users)
    mine = chain.call("api", "POST", "/tasks", before, {"title": "before the rename"}).json()
    chain.call("api", "POST", "/tasks", chain.user_token("api", BOB), {"title": "bob's"})

    renamed = fresh_emulator.administrator.request(
        "POST",
        "/admin/users/rename",
        data={"upn": "alice@contoso.test", "new_upn": "alice.jones@contoso.test", "display_name": "Alice Jones"},
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["object_id"] == ALICE.oid

    users = [*users, "alice.jones@contoso.test"]
    with pytest.raises(TokenError):
        _sign_in(fresh_emulator, "alice@contoso.test", users)  # the old name is gone
    after = _sign_in(fresh_emulator, "alice.jones@contoso.test", users)
    me = chain.call("api", "GET", "/me", after).json()
    assert me["api"]["username"] == "alice.jones@contoso.test" and me["api"]["name"] == "Alice Jones"
    assert me["api"]["object_id"] == ALICE.oid
    # Optional claims of the api's registration (acct, ctry), shown at /me.
    assert me["api"]["account_type"] == "member" and me["api"]["country"] == "NL"
    assert [t["id"] for t in chain.call("api", "GET", "/tasks", after).json()] == [mine["id"]]


def test_a_new_name_outside_the_tenants_domain_is_refused(fresh_emulator: LiveEmulator) -> None:
    r = fresh_emulator.administrator.request(
        "POST", "/admin/users/rename", data={"upn": "bob@contoso.test", "new_upn": "bob@fabrikam.test"}
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"
