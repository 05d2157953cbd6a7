"""The last hop on downstream-api's /me: who this service is to the database, asked of the database, with
names only (never a token, a password or the connection URL); and the claims the chain page explains."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from devtools.postgres import SUPERUSER
from fastapi.testclient import TestClient

both_backends = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
Headers = Callable[..., dict[str, str]]


@both_backends
def test_me_says_which_identity_and_role_reach_the_database(
    client: TestClient, as_user: Headers, backend: str, database_url: str
) -> None:
    r = client.get("/me", headers=as_user())
    assert r.status_code == 200, r.text
    hop = r.json()["database"]
    if backend == "sqlite":
        assert hop["system"] == "sqlite" and hop["role"] is None and hop["identity"] is None
        assert "no database identity" in hop["credential"]
    else:
        # These tests connect as the superuser over the owner-only socket (conftest.py): the database says so.
        assert hop["system"] == "postgresql" and hop["role"] == SUPERUSER
        assert hop["superuser"] is True and hop["identity"] is None
        assert "no token" in hop["credential"]
    assert database_url not in r.text and "password=" not in r.text


def test_me_names_the_claims_the_chain_page_explains(client: TestClient, as_user: Headers) -> None:
    me = client.get("/me", headers=as_user(azpacr="2", _claim_names={"groups": "src1"})).json()
    assert me["issuer"].endswith("/v2.0") and me["token_version"] == "2.0"
    assert (me["calling_app_acr"], me["calling_app_authentication"]) == ("2", "certificate or federated credential")
    assert me["group_overage"] is True and me["groups"] == []
    plain = client.get("/me", headers=as_user(azpacr="1", groups=["g1"])).json()
    assert (plain["calling_app_acr"], plain["calling_app_authentication"]) == ("1", "client secret")
    assert plain["group_overage"] is False and plain["groups"] == ["g1"]
