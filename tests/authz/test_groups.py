"""Sharing with groups, and group overage resolved without following a URL from the token.

dave is in 211 groups: his tokens carry `_claim_names`/`_claim_sources` instead of `groups`.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from devtools.ports import free_port

from tests.authz.chain import (
    ALICE,
    BOB,
    DAVE,
    ENGINEERING,
    EVERYONE_AT_CONTOSO,
    STEPPED_UP,
    Chain,
    generated_group,
    start_chain,
)
from tests.support.launch import LiveEmulator, LiveService

pytestmark = pytest.mark.guidance("configure-tokens-group-claims-app-roles")


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def _record(self) -> None:
        type(self).hits.append(f"{self.command} {self.path}")
        body = b'{"value": ["00000000-0000-4000-8000-000000000000"]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _record

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[tuple[str, list[str]]]:
    """A listener that records every request: where a forged _claim_sources points."""
    hits: ClassVar[list[str]] = []
    handler = type("Recorder", (_Recorder,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1.0/users/me/getMemberObjects", hits
    server.shutdown()
    server.server_close()


def _graph_requests(chain: Chain) -> int:
    return chain.emulator.stats()["graph_requests"]


def _task(chain: Chain, token: str, title: str) -> str:
    r = chain.call("api", "POST", "/tasks", token, {"title": title})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_alice_shares_with_everyone_bob_sees_it_and_cannot_change_it(chain: Chain) -> None:
    alice, bob = chain.user_token("api", ALICE, **STEPPED_UP), chain.user_token("api", BOB, **STEPPED_UP)
    task = _task(chain, alice, "lunch on friday")
    r = chain.call("api", "PUT", f"/tasks/{task}/share", alice, {"group_id": EVERYONE_AT_CONTOSO})
    assert r.status_code == 200 and r.json()["shared_with_group"] == EVERYONE_AT_CONTOSO
    shared = {t["id"]: t for t in chain.call("api", "GET", "/tasks/shared", bob).json()}
    assert shared[task]["title"] == "lunch on friday" and shared[task]["mine"] is False
    assert "owner_oid" not in shared[task]
    # Shared is read-only for the group: bob can't change, re-share or delete it.
    assert chain.call("api", "PATCH", f"/tasks/{task}", bob, {"done": True}).status_code == 404
    assert chain.call("api", "PUT", f"/tasks/{task}/share", bob, {"group_id": None}).status_code == 404
    assert chain.call("api", "DELETE", f"/tasks/{task}", bob).status_code == 404
    # Unsharing takes it away.
    assert chain.call("api", "PUT", f"/tasks/{task}/share", alice, {"group_id": None}).status_code == 200
    assert task not in {t["id"] for t in chain.call("api", "GET", "/tasks/shared", bob).json()}


def test_only_members_of_the_group_see_it(chain: Chain) -> None:
    alice, bob = chain.user_token("api", ALICE, **STEPPED_UP), chain.user_token("api", BOB, **STEPPED_UP)
    task = _task(chain, alice, "engineering only")
    assert chain.call("api", "PUT", f"/tasks/{task}/share", alice, {"group_id": ENGINEERING}).status_code == 200
    assert task in {t["id"] for t in chain.call("api", "GET", "/tasks/shared", alice).json()}
    assert task not in {t["id"] for t in chain.call("api", "GET", "/tasks/shared", bob).json()}


def test_sharing_with_a_group_you_are_not_in_is_403_and_changes_nothing(chain: Chain) -> None:
    bob = chain.user_token("api", BOB, **STEPPED_UP)
    task = _task(chain, bob, "bob's")
    r = chain.call("api", "PUT", f"/tasks/{task}/share", bob, {"group_id": ENGINEERING})
    assert r.status_code == 403
    assert "www-authenticate" not in r.headers  # not a token problem: a decision about bob
    assert r.json()["detail"] == "You can share only with a group you are a member of."
    assert chain.call("api", "GET", f"/tasks/{task}", bob).json()["shared_with_group"] is None


def test_a_group_list_in_the_body_is_refused(chain: Chain) -> None:
    bob = chain.user_token("api", BOB, **STEPPED_UP)
    task = _task(chain, bob, "bob's too")
    body = {"group_id": EVERYONE_AT_CONTOSO, "groups": [ENGINEERING]}
    assert chain.call("api", "PUT", f"/tasks/{task}/share", bob, body).status_code == 422


def test_dave_with_group_overage_shares_with_one_of_his_211_groups_and_sees_it(chain: Chain) -> None:
    dave = chain.user_token("api", DAVE, **STEPPED_UP)
    project = generated_group(137)
    task = _task(chain, dave, "project 137 kick-off")
    before = _graph_requests(chain)
    r = chain.call("api", "PUT", f"/tasks/{task}/share", dave, {"group_id": project})
    assert r.status_code == 200, r.text
    shared = {t["id"]: t for t in chain.call("api", "GET", "/tasks/shared", dave).json()}
    assert shared[task]["mine"] is True and shared[task]["shared_with_group"] == project
    # Membership came from the Graph stand-in, once, then from the short cache.
    assert _graph_requests(chain) == before + 1
    # alice isn't in project-137.
    assert task not in {
        t["id"] for t in chain.call("api", "GET", "/tasks/shared", chain.user_token("api", ALICE)).json()
    }


def test_me_groups_lists_the_groups_downstream_resolves_and_sharing_takes_any_of_them(chain: Chain) -> None:
    alice, bob, dave = (chain.user_token("api", user, **STEPPED_UP) for user in (ALICE, BOB, DAVE))
    alices = chain.call("api", "GET", "/me/groups", alice).json()["groups"]
    bobs = chain.call("api", "GET", "/me/groups", bob).json()["groups"]
    assert {EVERYONE_AT_CONTOSO, ENGINEERING} <= set(alices)
    assert EVERYONE_AT_CONTOSO in bobs and ENGINEERING not in bobs
    # dave's token has no groups claim (overage): the list comes from Graph, all 211 of them.
    daves = chain.call("api", "GET", "/me/groups", dave).json()["groups"]
    assert len(daves) == 211 and generated_group(137) in daves
    # What the list offers is exactly what sharing accepts.
    task = _task(chain, bob, "for everyone bob can share with")
    for group in bobs:
        assert chain.call("api", "PUT", f"/tasks/{task}/share", bob, {"group_id": group}).status_code == 200


def test_me_groups_names_each_group_as_graph_does_for_downstream_apis_group_member_read_all(chain: Chain) -> None:
    """Names come from Graph (/me/transitiveMemberOf, paged), read by downstream-api with GroupMember.Read.All,
    which the demo tenant's administrator consented to: dave's 211, and alice's two."""
    alice, dave = (chain.user_token("api", user, **STEPPED_UP) for user in (ALICE, DAVE))
    alices = chain.call("api", "GET", "/me/groups", alice).json()
    assert alices["names"] == {EVERYONE_AT_CONTOSO: "Everyone at Contoso", ENGINEERING: "Engineering"}
    daves = chain.call("api", "GET", "/me/groups", dave).json()
    # Every group named, and only his groups: all 211 (one page of up to 999, as downstream-api asks).
    assert set(daves["names"]) == set(daves["groups"]) and len(daves["names"]) == 211
    assert daves["names"][generated_group(137)] == "project-137"


def test_the_organizations_tasks_name_their_owners_from_graph_ids_unchanged(chain: Chain) -> None:
    """Owners by name (Graph's displayName, read by downstream-api with User.ReadBasic.All on the reader's
    behalf), beside the object id every decision still uses."""
    alice = chain.user_token("api", ALICE, **STEPPED_UP)
    task = _task(chain, alice, "owned by alice, named through Graph")
    reader = chain.user_token("api", BOB, scp="Tasks.Read.All")
    seen: list[dict[str, str]] = []
    path: str | None = "/org/tasks"
    while path:  # page by page, as the Link header leads
        r = chain.call("api", "GET", path, reader)
        assert r.status_code == 200, r.text
        seen += r.json()
        link = r.links.get("next", {}).get("url")
        path = link[link.index("/org/tasks") :] if link else None
    mine = next(t for t in seen if t["id"] == task)
    assert (mine["owner"], mine["owner_name"]) == (ALICE.oid, "Alice Adams")


def test_a_claim_source_pointing_elsewhere_is_never_fetched(
    live: LiveEmulator,
    start_service: Callable[..., LiveService],
    tmp_path: Path,
    attacker: tuple[str, list[str]],
) -> None:
    """A token (validly signed, as a stolen signing key or a confused issuer would make it) whose
    _claim_sources names the attacker's endpoint: membership still comes from the configured Graph."""
    url, hits = attacker
    chain = start_chain(live, start_service, tmp_path)  # its own group cache: nothing known yet
    down = chain.user_token("downstream-api", DAVE, claim_source=url, **STEPPED_UP)
    before = _graph_requests(chain)
    # The attacker would answer with this group; dave isn't in it.
    created = chain.call("downstream-api", "POST", "/records", down, {"title": "x"})
    assert created.status_code == 201
    share = f"/records/{created.json()['id']}/share"
    refused = chain.call("downstream-api", "PUT", share, down, {"group_id": "00000000-0000-4000-8000-000000000000"})
    assert refused.status_code == 403
    # One of his real groups, as the directory (Graph) has them, is accepted.
    assert chain.call("downstream-api", "PUT", share, down, {"group_id": generated_group(42)}).status_code == 200
    # Through the api too (its token's pointer is just as ignored).
    through_api = chain.call("api", "GET", "/tasks/shared", chain.user_token("api", DAVE, claim_source=url))
    assert through_api.status_code == 200
    assert created.json()["id"] in {t["id"] for t in through_api.json()}
    assert hits == []
    # Graph asked once, by downstream-api on dave's behalf; the cache answered the rest.
    assert _graph_requests(chain) == before + 1


def test_when_graph_cant_be_reached_overage_fails_closed_with_a_clear_503(
    live: LiveEmulator, start_service: Callable[..., LiveService], tmp_path: Path
) -> None:
    """No membership known is not "member of nothing, carry on": the answer is a retryable 503."""
    downstream = start_service(
        "downstream_api",
        "DOWNSTREAM",
        {
            **live.managed_identity_env("downstream-api"),
            "DOWNSTREAM_AUTHORITY": live.authority(),
            "DOWNSTREAM_STATE_DIR": str(tmp_path / "downstream"),
            "DOWNSTREAM_GRAPH_URL": f"https://localhost:{free_port()}",  # nothing listens there
        },
    )
    chain = Chain(live, downstream, downstream)  # only downstream-api is called here
    dave = chain.user_token("downstream-api", DAVE)
    r = chain.call("downstream-api", "GET", "/records/shared", dave)
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.json()["detail"] == "Your group memberships can't be read right now; try again shortly."
    # A caller whose groups fit in the token needs no Graph.
    assert (
        chain.call("downstream-api", "GET", "/records/shared", chain.user_token("downstream-api", BOB)).status_code
        == 200
    )
