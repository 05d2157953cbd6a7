"""Records: CRUD for the owner, 404 for everyone else, and only the fields a caller may set."""

from __future__ import annotations

import json
import re
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from zerotrust.settings import HOME_TENANT_ID

ALICE = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912"
BOB = "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b"
OTHER_TENANT_ID = "7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b"
# The data tests run against SQLite and PostgreSQL (see conftest.py).
both_backends = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")  # a malformed traceparent is dropped: a new trace begins
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
Headers = Callable[..., dict[str, str]]

# A fixed id for the parametrized cases: pytest-xdist needs every worker to collect the same ids.
UNKNOWN_ID = "0f0e0d0c-0b0a-4908-8706-050403020100"


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"  # a caller's W3C trace context
TRACE_ID_SENT = TRACEPARENT.split("-")[1]


def create(client: TestClient, headers: dict[str, str], title: str = "Buy milk") -> dict[str, Any]:
    r = client.post("/records", headers=headers, json={"title": title})
    assert r.status_code == 201, r.text
    record: dict[str, Any] = r.json()
    return record


@both_backends
def test_crud_for_the_owner(client: TestClient, as_user: Headers) -> None:
    alice = as_user()
    assert client.get("/records", headers=alice).json() == []
    record = create(client, alice, "  Buy milk  ")
    assert set(record) == {"id", "title", "done", "created_at", "shared_with_group"}
    assert UUID4.match(record["id"]) and record["title"] == "Buy milk" and record["done"] is False
    assert record["created_at"].endswith("Z")
    second = create(client, alice, "Call Bob")
    assert [r["id"] for r in client.get("/records", headers=alice).json()] == [record["id"], second["id"]]
    assert client.get(f"/records/{record['id']}", headers=alice).json() == record

    r = client.patch(f"/records/{record['id']}", headers=alice, json={"done": True})
    assert r.status_code == 200 and r.json() == {**record, "done": True}
    r = client.patch(f"/records/{record['id']}", headers=alice, json={"title": "Buy oat milk"})
    assert r.json() == {**record, "done": True, "title": "Buy oat milk"}
    assert client.patch(f"/records/{record['id']}", headers=alice, json={}).json()["title"] == "Buy oat milk"

    r = client.delete(f"/records/{record['id']}", headers=alice)
    assert r.status_code == 204 and r.content == b""
    assert client.get(f"/records/{record['id']}", headers=alice).status_code == 404
    assert client.delete(f"/records/{record['id']}", headers=alice).status_code == 404
    assert [r["id"] for r in client.get("/records", headers=alice).json()] == [second["id"]]


@both_backends
def test_another_user_gets_404_for_everything_and_changes_nothing(client: TestClient, as_user: Headers) -> None:
    alice, bob = as_user(), as_user(BOB, preferred_username="bob@contoso.test", name="Bob Brown")
    record = create(client, alice)
    url = f"/records/{record['id']}"
    takeover = {"title": "mine now", "done": True}
    for r in (
        client.get(url, headers=bob),
        client.patch(url, headers=bob, json=takeover),
        client.delete(url, headers=bob),
    ):
        assert r.status_code == 404 and r.json() == {"detail": "No such record."}
    assert client.get("/records", headers=bob).json() == []
    assert client.get(url, headers=alice).json() == record


@both_backends
def test_same_object_id_in_another_tenant_is_someone_else(
    make_client: Callable[..., TestClient], as_user: Headers
) -> None:
    # Multi-tenant mode: both tenants allowed; an oid is unique only within its tenant.
    client = make_client(allowed_tenants=(HOME_TENANT_ID, OTHER_TENANT_ID))
    record = create(client, as_user())
    twin = as_user(tid=OTHER_TENANT_ID, iss=f"https://login.example.test/{OTHER_TENANT_ID}/v2.0")
    assert client.get("/me", headers=twin).json()["tenant_id"] == OTHER_TENANT_ID
    assert client.get(f"/records/{record['id']}", headers=twin).status_code == 404
    assert client.get("/records", headers=twin).json() == []


@both_backends
def test_records_follow_the_object_id_not_the_username(client: TestClient, as_user: Headers) -> None:
    # zt: zero-trust-token-customization - a rename keeps access; a reused name gets none.
    record = create(client, as_user())
    renamed = as_user(preferred_username="alice.adams@contoso.test", name="Alice Renamed")
    assert client.get(f"/records/{record['id']}", headers=renamed).status_code == 200
    impostor = as_user(str(uuid.uuid4()))  # new oid, same preferred_username and name as alice
    assert client.get(f"/records/{record['id']}", headers=impostor).status_code == 404


@both_backends
@pytest.mark.parametrize(
    "record_id",
    [
        "not-a-uuid",
        "1",
        "00000000-0000-0000-0000-000000000000",
        "3F2504E0-4F89-41D3-9A0C-0305E82C3301",  # upper case: not how ids are minted
        "3f2504e0-4f89-11d3-9a0c-0305e82c3301",  # uuid1
        "3f2504e04f8941d39a0c0305e82c3301",  # pragma: allowlist secret
        "{3f2504e0-4f89-41d3-9a0c-0305e82c3301}",
        "x" * 5000,
        "%27%20OR%201%3D1--",
        "..%2f..%2fetc%2fpasswd",
    ],
)
def test_malformed_ids_are_404(client: TestClient, as_user: Headers, record_id: str) -> None:
    create(client, as_user())
    for method in ("GET", "PATCH", "DELETE"):
        r = client.request(
            method, f"/records/{record_id}", headers=as_user(), json={"done": True} if method == "PATCH" else None
        )
        assert r.status_code == 404, (method, r.text)


@both_backends
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x", "owner_oid": BOB}, "owner_oid"),
        ({"title": "x", "owner": BOB}, "owner"),
        ({"title": "x", "tenant_id": OTHER_TENANT_ID}, "tenant_id"),
        ({"title": "x", "id": "3f2504e0-4f89-41d3-9a0c-0305e82c3301"}, "id"),
        ({"title": "x", "done": True}, "done"),
        ({"title": "x", "created_at": "2000-01-01T00:00:00Z"}, "created_at"),
    ],
)
def test_create_refuses_fields_a_caller_may_not_set(
    client: TestClient, as_user: Headers, body: dict[str, Any], field: str
) -> None:
    r = client.post("/records", headers=as_user(), json=body)
    assert r.status_code == 422
    problem = r.json()
    assert problem["error"] == "invalid_request"
    assert {"loc": ["body", field], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"} in problem[
        "detail"
    ]
    assert client.get("/records", headers=as_user()).json() == []


@both_backends
@pytest.mark.parametrize(
    "body",
    [
        {"title": "x", "owner_oid": BOB},
        {"tenant_id": OTHER_TENANT_ID},
        {"id": UNKNOWN_ID},
        {"done": "true"},
        {"done": 1},
        {"done": None},
        {"title": None},
        {"title": ""},
        {"title": "   "},
        {"title": 5},
        [],
        "title",
    ],
)
def test_patch_refuses_bad_and_forbidden_fields(client: TestClient, as_user: Headers, body: Any) -> None:
    record = create(client, as_user())
    r = client.patch(f"/records/{record['id']}", headers=as_user(), json=body)
    assert r.status_code == 422, r.text
    assert client.get(f"/records/{record['id']}", headers=as_user()).json() == record


@both_backends
@pytest.mark.parametrize(
    "title", ["", "   ", "x" * 201, "a\x00b", "line\nbreak", "tab\there", "\ud800", 7, None, ["x"]]
)
def test_create_refuses_bad_titles(client: TestClient, as_user: Headers, title: Any) -> None:
    # json.dumps escapes non-ASCII, so a lone surrogate travels as the JSON text \ud800.
    r = client.post(
        "/records",
        headers={**as_user(), "Content-Type": "application/json"},
        content=json.dumps({"title": title}).encode(),
    )
    assert r.status_code == 422, r.text


@both_backends
def test_title_limits(client: TestClient, as_user: Headers) -> None:
    assert create(client, as_user(), "x" * 200)["title"] == "x" * 200
    assert create(client, as_user(), "  " + "y" * 200 + "  ")["title"] == "y" * 200  # stripped first
    assert create(client, as_user(), "Ünïcödé ✓ 記録")["title"] == "Ünïcödé ✓ 記録"


@both_backends
def test_validation_errors_do_not_echo_the_input(client: TestClient, as_user: Headers) -> None:
    r = client.post("/records", headers=as_user(), json={"title": "<script>secret</script>" * 20})
    assert r.status_code == 422 and "secret" not in r.text


@both_backends
def test_bodies_must_be_json_and_small(client: TestClient, as_user: Headers) -> None:
    r = client.post("/records", headers=as_user(), content=b"title=x")
    assert r.status_code == 415
    r = client.post(
        "/records", headers={**as_user(), "Content-Type": "application/x-www-form-urlencoded"}, content=b"title=x"
    )
    assert r.status_code == 415
    r = client.post(
        "/records",
        headers={**as_user(), "Content-Type": "application/json"},
        content=b'{"title": "' + b"x" * 70_000 + b'"}',
    )
    assert r.status_code == 413

    def chunks() -> Any:
        yield b'{"title": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    r = client.post("/records", headers={**as_user(), "Content-Type": "application/json"}, content=chunks())
    assert r.status_code == 413
    r = client.post(
        "/records", headers={**as_user(), "Content-Type": "application/json; charset=utf-8"}, content=b'{"title": "ok"}'
    )
    assert r.status_code == 201
    r = client.post("/records", headers={**as_user(), "Content-Type": "application/json"}, content=b"{bad")
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"


@both_backends
def test_data_survives_a_restart(make_client: Callable[..., TestClient], as_user: Headers) -> None:
    first = make_client()
    record = create(first, as_user())
    first.__exit__(None, None, None)
    second = make_client()
    assert second.get(f"/records/{record['id']}", headers=as_user()).json() == record


def test_database_file_is_private(client: TestClient, tmp_path: Path) -> None:
    folder = tmp_path / "downstream"
    db = folder / "records.db"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_unexpected_errors_are_500_without_a_trace(
    client: TestClient, as_user: Headers, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from downstream_api.db import Database

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire at /secret/path")

    monkeypatch.setattr(Database, "run", broken)
    r = client.get("/records", headers={**as_user(), "traceparent": TRACEPARENT})
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "server_error" and body["correlation_id"] == TRACE_ID_SENT
    assert "secret" not in r.text and "Traceback" not in r.text
    assert r.headers["x-correlation-id"] == TRACE_ID_SENT and r.headers["cache-control"] == "no-store"
    assert TRACE_ID_SENT in caplog.text and "disk on fire" in caplog.text


def _operational() -> Exception:
    from sqlalchemy.exc import OperationalError

    return OperationalError("SELECT 1", {}, Exception("connection refused"))


def _interface() -> Exception:
    from sqlalchemy.exc import InterfaceError

    return InterfaceError("SELECT 1", {}, Exception("connection already closed"))


def _no_token() -> Exception:
    # What azure-postgresql-auth raises when the managed identity's token cannot be had.
    from azure_postgresql_auth.errors import EntraConnectionValueError

    return EntraConnectionValueError("Could not retrieve Entra credentials")


@pytest.mark.parametrize("failure", [_operational, _interface, _no_token], ids=["refused", "closed", "no-token"])
def test_database_unavailable_is_503(
    client: TestClient, as_user: Headers, monkeypatch: pytest.MonkeyPatch, failure: Callable[[], Exception]
) -> None:
    from downstream_api.db import Database

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise failure()

    monkeypatch.setattr(Database, "run", down)
    r = client.get("/records", headers={**as_user(), "traceparent": "<script>"})
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.json()["error"] == "temporarily_unavailable"
    cid = r.json()["correlation_id"]
    assert TRACE_ID.match(cid) and r.headers["x-correlation-id"] == cid
