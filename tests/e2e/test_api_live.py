"""The api as a client such as curl sees it: identity through the chain, and its refusals."""

from __future__ import annotations

import ssl

import httpx
import pytest
from devtools.token import device_code_token

from tests.support.launch import RunningStack

pytestmark = pytest.mark.guidance("api-calls-api")


@pytest.fixture(scope="module")
def alice_token(stack: RunningStack) -> str:
    return device_code_token(stack.info, "alice@contoso.test")


def _client(stack: RunningStack) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=stack.info["ca_bundle"]), timeout=10)


def test_me_shows_the_same_user_at_the_api_and_downstream_with_different_audience_and_caller(
    stack: RunningStack, alice_token: str
) -> None:
    with _client(stack) as http:
        me = http.get(f"{stack.info['api']}/me", headers={"Authorization": f"Bearer {alice_token}"}).json()
    api, down = me["api"], me["downstream_api"]
    assert (api["object_id"], api["tenant_id"]) == (down["object_id"], down["tenant_id"])
    assert api["audience"] == "f6016428-a480-44ec-bc23-042b445465fc"
    assert down["audience"] == "56416278-656a-410f-9888-db490850ca20"
    assert api["calling_app"] == stack.info["cli_client_id"]
    assert down["calling_app"] == "f6016428-a480-44ec-bc23-042b445465fc"  # the api, on alice's behalf
    assert down["scopes"] == ["Records.Read"]  # a read needs no more downstream
    assert api["subject"] != down["subject"]


def test_no_token_is_a_bare_challenge(stack: RunningStack) -> None:
    with _client(stack) as http:
        r = http.get(f"{stack.info['api']}/tasks")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="api"'


def test_the_apis_token_is_refused_by_downstream_api_so_relaying_it_could_never_work(
    stack: RunningStack, alice_token: str
) -> None:
    with _client(stack) as http:
        r = http.get(f"{stack.info['downstream_api']}/records", headers={"Authorization": f"Bearer {alice_token}"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('Bearer realm="downstream-api", error="invalid_token"')


def test_a_body_that_tries_to_set_the_owner_is_refused_before_anything_is_stored(
    stack: RunningStack, alice_token: str
) -> None:
    auth = {"Authorization": f"Bearer {alice_token}"}
    with _client(stack) as http:
        r = http.post(
            f"{stack.info['api']}/tasks",
            headers=auth,
            json={"title": "mine now", "owner_oid": "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b"},
        )
        assert r.status_code == 422 and r.json()["error"] == "invalid_request"
        titles = [t["title"] for t in http.get(f"{stack.info['api']}/tasks", headers=auth).json()]
    assert "mine now" not in titles
