"""App-only callers over HTTP on a stack of their own: the daemon's report, SCIM provisioning, the
audit log behind `zt permissions-report`.

A stack of its own, because these tests deactivate and delete users and read the audit
logs from their first line: the session's shared stack is used by everyone else.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msal
import pytest
import requests
from devtools.paths import repo_root
from devtools.token import device_code_token

from tests.support.launch import APP_ONLY_STACK_OFFSET, RunningStack, start_stack, zt
from tests.support.people import Person
from tests.support.tokens import apis, app_id, build_access_token, build_app_only_token

APP_ONLY = pytest.mark.guidance("developer-strategy-application-permissions")
PROVISIONING = pytest.mark.guidance("identity-standards-based-development-methodologies")
AUDIT = pytest.mark.guidance("overprivileged-permissions")

SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ALICE_OID = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912"
DAVE_OID = "5d6e7f80-91a2-43b4-85d6-e7f8091a2b3c"

# A fixed id for the parametrized cases: pytest-xdist needs every worker to collect the same ids.
UNKNOWN_ID = "0f0e0d0c-0b0a-4908-8706-050403020100"


@pytest.fixture(scope="module")
def app_only_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    offset = APP_ONLY_STACK_OFFSET
    command = [sys.executable, "-m", "devtools.cli", "run", "--port-offset", str(offset), "--ready-timeout", "120"]
    running = start_stack(tmp_path_factory.mktemp("app-only"), offset, command)
    yield running
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(30)


def _app_token(stack: RunningStack, app: str) -> str:
    """What the daemon or the provisioner gets: client credentials, its managed identity as credential."""
    from zerotrust.credentials import federated_client_assertion

    headers = json.loads((stack.local_dir / "emulator" / "managed-identity-headers.json").read_text())
    ca = str(stack.info["ca_bundle"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IDENTITY_ENDPOINT", f"{stack.info['emulator']}/msi/token")
        mp.setenv("IDENTITY_HEADER", headers[app])
        mp.setenv("REQUESTS_CA_BUNDLE", ca)
        http = requests.Session()
        http.verify, http.trust_env = ca, False
        client = msal.ConfidentialClientApplication(
            app_id(app),
            client_credential={"client_assertion": federated_client_assertion()},
            authority=stack.info["authority"],
            instance_discovery=False,
            http_client=http,
        )
        result = client.acquire_token_for_client([f"api://{app_id('api')}/.default"])
    assert "access_token" in result, result
    token: str = result["access_token"]
    return token


@pytest.fixture(scope="module")
def daemon(app_only_stack: RunningStack) -> str:
    return _app_token(app_only_stack, "daemon")


@pytest.fixture(scope="module")
def provisioner(app_only_stack: RunningStack) -> str:
    return _app_token(app_only_stack, "provisioner")


@pytest.fixture(scope="module")
def alice(app_only_stack: RunningStack) -> str:
    return device_code_token(app_only_stack.info, "alice@contoso.test")


@pytest.fixture(scope="module")
def dave(app_only_stack: RunningStack) -> str:
    return device_code_token(app_only_stack.info, "dave@contoso.test")


@pytest.fixture
def http(app_only_stack: RunningStack) -> Iterator[httpx.Client]:
    tls = ssl.create_default_context(cafile=app_only_stack.info["ca_bundle"])
    with httpx.Client(base_url=app_only_stack.info["api"], verify=tls, timeout=15, trust_env=False) as client:
        yield client


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def insufficient(realm: str, scope: str) -> str:
    return (
        f'Bearer realm="{realm}", error="insufficient_scope", '
        f'error_description="The token does not grant this operation.", scope="{scope}"'
    )


# -- the daemon ------------------------------------------------------------------------------


@APP_ONLY
def test_the_daemon_gets_the_tenant_report_app_only_counts_and_no_titles(
    app_only_stack: RunningStack, http: httpx.Client, alice: str
) -> None:
    before = json.loads(zt(app_only_stack, "daemon").stdout)
    first = http.post("/tasks", json={"title": "quarterly secret"}, headers=bearer(alice)).json()
    http.post("/tasks", json={"title": "another"}, headers=bearer(alice))
    http.patch(f"/tasks/{first['id']}", json={"done": True}, headers=bearer(alice))

    done = zt(app_only_stack, "daemon")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tenant_id"] == app_only_stack.info["tenants"]["contoso"]
    assert (report["open"], report["done"]) == (before["open"] + 1, before["done"] + 1)
    assert report["owners"] >= 1
    assert "secret" not in done.stdout and ALICE_OID not in done.stdout
    assert "eyJ" not in done.stdout + done.stderr  # no token printed


@APP_ONLY
def test_the_daemon_runs_as_a_scheduled_job_from_its_environment_alone(
    app_only_stack: RunningStack, tmp_path: Path
) -> None:
    # As the Container Apps job runs it (infra/jobs.tf): DAEMON_* settings, the platform's identity endpoint,
    # the user-assigned identity named by client id; no stack.json to read (an empty local folder).
    headers = json.loads((app_only_stack.local_dir / "emulator" / "managed-identity-headers.json").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDENTITY_", "API_", "DOWNSTREAM_", "DAEMON_"))}
    env |= {
        "ZT_LOCAL_DIR": str(tmp_path),
        "IDENTITY_ENDPOINT": f"{app_only_stack.info['emulator']}/msi/token",
        "IDENTITY_HEADER": headers["daemon"],
        "SSL_CERT_FILE": str(app_only_stack.info["ca_bundle"]),
        "REQUESTS_CA_BUNDLE": str(app_only_stack.info["ca_bundle"]),
        "DAEMON_AUTHORITY": str(app_only_stack.info["authority"]),
        "DAEMON_CLIENT_ID": app_id("daemon"),
        "DAEMON_MANAGED_IDENTITY_CLIENT_ID": "d028a466-064c-4333-bbf9-2090e0c994a3",
        "DAEMON_API_URL": str(app_only_stack.info["api"]),
        "DAEMON_API_APP_ID_URI": f"api://{app_id('api')}",
    }
    run = [sys.executable, "-m", "devtools.cli", "daemon"]
    done = subprocess.run(run, env=env, cwd=repo_root(), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tenant_id"] == app_only_stack.info["tenants"]["contoso"]
    # A setting missing: one line naming it, no traceback.
    del env["DAEMON_CLIENT_ID"]
    failed = subprocess.run(run, env=env, cwd=repo_root(), capture_output=True, text=True, timeout=120, check=False)
    assert failed.returncode == 1 and "DAEMON_CLIENT_ID must be set" in failed.stderr
    assert "Traceback" not in failed.stderr


@APP_ONLY
@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/reports/tenant", "Tasks.Report.All"),
        ("GET", "/scim/v2/Users", "Users.Provision"),
        ("POST", "/scim/v2/Users", "Users.Provision"),
        ("GET", f"/scim/v2/Users/{UNKNOWN_ID}", "Users.Provision"),
        ("PUT", f"/scim/v2/Users/{UNKNOWN_ID}", "Users.Provision"),
        ("PATCH", f"/scim/v2/Users/{UNKNOWN_ID}", "Users.Provision"),
        ("DELETE", f"/scim/v2/Users/{UNKNOWN_ID}", "Users.Provision"),
    ],
)
def test_app_only_routes_refuse_a_users_token_and_the_other_app_role(
    http: httpx.Client, alice: str, daemon: str, provisioner: str, method: str, path: str, scope: str
) -> None:
    wrong_app = provisioner if scope == "Tasks.Report.All" else daemon
    for token in (alice, wrong_app):
        r = http.request(method, path, headers=bearer(token, **{"Content-Type": SCIM}), content=b"{}")
        assert r.status_code == 403, r.text
        assert r.headers["www-authenticate"] == insufficient("api", scope)


@APP_ONLY
@pytest.mark.parametrize(("method", "path"), [("GET", "/tasks"), ("POST", "/tasks"), ("GET", "/me")])
def test_user_routes_refuse_the_daemons_and_the_provisioners_tokens(
    http: httpx.Client, daemon: str, provisioner: str, method: str, path: str
) -> None:
    scope = "Tasks.ReadWrite" if method == "POST" else "Tasks.Read Tasks.ReadWrite"
    for token in (daemon, provisioner):
        r = http.request(method, path, headers=bearer(token), json={"title": "x"})
        assert r.status_code == 403
        assert r.headers["www-authenticate"] == insufficient("api", scope)


@APP_ONLY
def test_the_daemons_token_is_for_the_api_only(app_only_stack: RunningStack, daemon: str) -> None:
    tls = ssl.create_default_context(cafile=app_only_stack.info["ca_bundle"])
    with httpx.Client(verify=tls, timeout=10, trust_env=False) as client:
        r = client.get(f"{app_only_stack.info['downstream_api']}/reports/tenant", headers=bearer(daemon))
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


@APP_ONLY
def test_another_tenants_app_only_token_opens_nothing(app_only_stack: RunningStack, http: httpx.Client) -> None:
    api = apis(app_only_stack)["api"]
    fabrikam = app_only_stack.info["tenants"]["fabrikam"]
    for path, role in (("/reports/tenant", "Tasks.Report.All"), ("/scim/v2/Users", "Users.Provision")):
        token = build_app_only_token(
            app_only_stack,
            api,
            [role],
            azp=app_id("daemon"),
            tid=fabrikam,
            iss=f"{app_only_stack.info['authorities']['fabrikam']}/v2.0",
        )
        r = http.get(path, headers=bearer(token))
        assert r.status_code == 401, r.text
        assert "fabrikam" not in r.text and "open" not in r.text


@APP_ONLY
def test_an_app_only_token_from_a_client_the_api_does_not_allow_is_refused(
    app_only_stack: RunningStack, http: httpx.Client
) -> None:
    # An unknown client, and the web app: a user-facing app is allowed delegated tokens only.
    for client in (str(uuid.uuid4()), app_id("web")):
        token = build_app_only_token(app_only_stack, apis(app_only_stack)["api"], ["Tasks.Report.All"], azp=client)
        r = http.get("/reports/tenant", headers=bearer(token))
        assert r.status_code == 401
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
    # And the daemon is allowed app-only tokens only: a user's token obtained by it is refused.
    delegated = build_access_token(app_only_stack, apis(app_only_stack)["api"], azp=app_id("daemon"))
    r = http.get("/tasks", headers=bearer(delegated))
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


# -- SCIM provisioning -----------------------------------------------------------------------


def scim(token: str) -> dict[str, str]:
    return bearer(token, **{"Content-Type": SCIM, "Accept": SCIM})


def _user(oid: str, user_name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER], "externalId": oid, "userName": user_name, **extra}


def _scim_error(r: httpx.Response, status: int, scim_type: str | None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(SCIM)
    body = r.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status) and body["detail"]
    assert body.get("scimType") == scim_type


@PROVISIONING
def test_scim_lifecycle_create_find_replace_deactivate_reactivate_delete(
    http: httpx.Client, provisioner: str, dave: str
) -> None:
    task = http.post("/tasks", json={"title": "dave's"}, headers=bearer(dave))
    assert task.status_code == 201

    created = http.post("/scim/v2/Users", json=_user(DAVE_OID, "dave@contoso.test"), headers=scim(provisioner))
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith(SCIM)
    user = created.json()
    assert created.headers["location"] == user["meta"]["location"]
    assert user["schemas"] == [USER] and user["externalId"] == DAVE_OID and user["active"] is True
    assert user["id"] != DAVE_OID and uuid.UUID(user["id"]).version == 4
    path = f"/scim/v2/Users/{user['id']}"
    assert http.get(path, headers=scim(provisioner)).json()["userName"] == "dave@contoso.test"

    found = http.get("/scim/v2/Users", params={"filter": 'userName eq "dave@contoso.test"'}, headers=scim(provisioner))
    assert found.json()["totalResults"] == 1 and found.json()["Resources"][0]["id"] == user["id"]
    none = http.get("/scim/v2/Users", params={"filter": 'userName eq "nobody@contoso.test"'}, headers=scim(provisioner))
    assert none.json()["totalResults"] == 0 and none.json()["Resources"] == []

    # A rename changes nothing about who he is: the key is his object id.
    renamed = http.put(path, json=_user(DAVE_OID, "david@contoso.test", displayName="David"), headers=scim(provisioner))
    assert renamed.status_code == 200 and renamed.json()["userName"] == "david@contoso.test"
    assert http.get("/tasks", headers=bearer(dave)).status_code == 200

    off = {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
    assert http.patch(path, json=off, headers=scim(provisioner)).json()["active"] is False
    refused = http.get("/tasks", headers=bearer(dave))  # the same, still unexpired token
    assert refused.status_code == 403
    assert refused.json()["error"] == "account_deactivated"
    assert "deactivated" in refused.json()["error_description"] and "correlation_id" in refused.json()
    assert http.post("/tasks", json={"title": "x"}, headers=bearer(dave)).status_code == 403

    on = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": True}}]}
    assert http.patch(path, json=on, headers=scim(provisioner)).json()["active"] is True
    kept = http.get("/tasks", headers=bearer(dave))
    assert kept.status_code == 200 and task.json()["id"] in [t["id"] for t in kept.json()]

    assert http.delete(path, headers=bearer(provisioner)).status_code == 204
    _scim_error(http.get(path, headers=scim(provisioner)), 404, None)
    assert http.get("/tasks", headers=bearer(dave)).json() == []  # deleted with him


@PROVISIONING
def test_a_person_deactivated_by_provisioning_is_told_so_at_the_web_with_a_reference(
    app_only_stack: RunningStack,
) -> None:
    """As `make provision ACTION=deactivate USER=...` does it, seen by the person in the web app: why they are
    refused and what to quote, and nothing else of the api's answer."""
    bob, web = "bob@contoso.test", app_only_stack.web
    assert zt(app_only_stack, "provision", "create", bob).returncode == 0
    person = Person()
    try:
        r = person.get(f"{web}/auth/login?next=/tasks")
        action, fields = person.sign_in_at_emulator(r.headers["location"], app_only_stack.info["demo_password"], bob)
        assert person.post(action, fields).status_code == 303
        assert person.get(f"{web}/tasks").status_code == 200
        off = zt(app_only_stack, "provision", "deactivate", bob)
        assert off.returncode == 0, off.stderr

        refused = person.get(f"{web}/tasks")
        assert refused.status_code == 403
        assert "Your access to this app was turned off by your organization" in refused.text
        assert "api refused" not in refused.text and "account_deactivated" not in refused.text
        reference = re.search(r"reference <code>([0-9a-f]{32})</code>", refused.text)
        assert reference, refused.text[-800:]
        # The reference is the one the tiers logged the refusal under: what an administrator looks up.
        audit = "".join(log.read_text() for log in (app_only_stack.local_dir / "audit").glob("*.jsonl"))
        lines = [json.loads(line) for line in audit.splitlines() if reference.group(1) in line]
        assert any(line["service"] == "downstream-api" and line["status"] == 403 for line in lines), lines
    finally:
        person.http.close()
        assert zt(app_only_stack, "provision", "delete", bob).returncode == 0


@PROVISIONING
def test_scim_locations_are_the_configured_address_never_the_host_header(
    app_only_stack: RunningStack, http: httpx.Client, provisioner: str
) -> None:
    api = str(app_only_stack.info["api"])
    # Another of the api's own names (allowed), so the request is answered: the links still name the
    # configured address (API_PUBLIC_URL; here its default, https://localhost:<port>).
    alias = {"Host": f"127.0.0.1:{urlsplit(api).port}"}
    oid = "6e7f8091-a2b3-44c5-96e7-f8091a2b3c4d"
    created = http.post("/scim/v2/Users", json=_user(oid, "frank@contoso.test"), headers={**scim(provisioner), **alias})
    assert created.status_code == 201, created.text
    location = f"{api}/scim/v2/Users/{created.json()['id']}"
    assert created.headers["location"] == created.json()["meta"]["location"] == location
    listed = http.get(
        "/scim/v2/Users", params={"filter": f'externalId eq "{oid}"'}, headers={**scim(provisioner), **alias}
    )
    assert [u["meta"]["location"] for u in listed.json()["Resources"]] == [location]
    # A forged host is no way in at all: refused before the token is read.
    forged = http.post(
        "/scim/v2/Users", json=_user(oid, "frank@contoso.test"), headers={**scim(provisioner), "Host": "evil.test"}
    )
    assert forged.status_code == 400 and "location" not in forged.headers
    assert http.delete(urlsplit(location).path, headers=bearer(provisioner)).status_code == 204


@PROVISIONING
@pytest.mark.parametrize(
    ("extra", "scim_type"),
    [
        ({"tenant": "7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b"}, "invalidSyntax"),
        ({"roles": [{"value": "Tasks.Admin"}]}, "invalidSyntax"),
        ({"groups": [{"value": "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"}]}, "invalidSyntax"),
        ({"emails": [{"value": "alice@contoso.test"}]}, "invalidSyntax"),
        ({"active": "maybe"}, "invalidValue"),
        ({"externalId": "alice@contoso.test"}, "invalidValue"),
        ({"userName": ""}, "invalidValue"),
        ({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}, "invalidSyntax"),
    ],
)
def test_a_scim_body_that_tries_to_set_what_it_may_not_is_refused(
    http: httpx.Client, provisioner: str, extra: dict[str, Any], scim_type: str
) -> None:
    r = http.post("/scim/v2/Users", json=_user(ALICE_OID, "alice@contoso.test", **extra), headers=scim(provisioner))
    _scim_error(r, 400, scim_type)
    found = http.get("/scim/v2/Users", params={"filter": f'externalId eq "{ALICE_OID}"'}, headers=scim(provisioner))
    assert found.json()["totalResults"] == 0


@PROVISIONING
def test_scim_errors_are_scim_shaped(http: httpx.Client, provisioner: str) -> None:
    created = http.post("/scim/v2/Users", json=_user(str(uuid.uuid4()), "temp@contoso.test"), headers=scim(provisioner))
    assert created.status_code == 201
    user = created.json()
    path = f"/scim/v2/Users/{user['id']}"
    again = _user(user["externalId"], "other-name@contoso.test")
    _scim_error(http.post("/scim/v2/Users", json=again, headers=scim(provisioner)), 409, "uniqueness")
    _scim_error(http.put(path, json=_user(str(uuid.uuid4()), "x"), headers=scim(provisioner)), 400, "mutability")
    for op, scim_type in (
        ({"op": "replace", "path": "roles", "value": ["Tasks.Admin"]}, "invalidPath"),
        ({"op": "replace", "path": "externalId", "value": ALICE_OID}, "mutability"),
        ({"op": "remove", "path": "active"}, "invalidValue"),
        ({"op": "replace", "value": {"tenant": "x"}}, "invalidPath"),
    ):
        _scim_error(
            http.patch(path, json={"schemas": [PATCH], "Operations": [op]}, headers=scim(provisioner)), 400, scim_type
        )
    _scim_error(
        http.get("/scim/v2/Users", params={"filter": 'displayName co "a"'}, headers=scim(provisioner)),
        400,
        "invalidFilter",
    )
    _scim_error(http.get("/scim/v2/Users/not-an-id", headers=scim(provisioner)), 404, None)
    _scim_error(http.get(f"/scim/v2/Users/{uuid.uuid4()}", headers=scim(provisioner)), 404, None)
    _scim_error(http.post("/scim/v2/Users", content=b"{", headers=scim(provisioner)), 400, "invalidSyntax")
    _scim_error(http.post("/scim/v2/Users", content=b"[]", headers=scim(provisioner)), 400, "invalidSyntax")
    plain = bearer(provisioner, **{"Content-Type": "text/plain"})
    _scim_error(http.post("/scim/v2/Users", content=b"{}", headers=plain), 415, None)
    assert http.delete(path, headers=bearer(provisioner)).status_code == 204


@PROVISIONING
def test_scim_lists_users_a_page_at_a_time(http: httpx.Client, provisioner: str) -> None:
    made = []
    for n in range(3):
        body = _user(str(uuid.uuid4()), f"paged-{n}@contoso.test")
        made.append(http.post("/scim/v2/Users", json=body, headers=scim(provisioner)).json()["id"])

    def page(**params: Any) -> dict[str, Any]:
        r = http.get("/scim/v2/Users", params=params, headers=scim(provisioner))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        assert body["schemas"] == [LIST] and body["itemsPerPage"] == len(body["Resources"])
        return body

    total = page(count=0)["totalResults"]
    assert total >= 3 and page(count=0)["Resources"] == []
    seen: list[str] = []
    for start in range(1, total + 1, 2):  # RFC 7644 3.4.2.4: 1-based startIndex, count per page
        body = page(startIndex=start, count=2)
        assert body["startIndex"] == start and body["totalResults"] == total and len(body["Resources"]) <= 2
        seen += [u["id"] for u in body["Resources"]]
    assert len(seen) == len(set(seen)) == total and set(made) <= set(seen)
    assert page(startIndex=total + 1)["Resources"] == []
    # Out-of-range values are read as the RFC says; the page is never larger than the server's cap.
    assert page(startIndex=-5, count=1)["startIndex"] == 1
    assert page(count=-3)["Resources"] == []
    assert page(count=100_000)["itemsPerPage"] <= 100
    for params in ({"startIndex": "first"}, {"count": "1.5"}):
        _scim_error(http.get("/scim/v2/Users", params=params, headers=scim(provisioner)), 400, "invalidValue")
    for user_id in made:
        assert http.delete(f"/scim/v2/Users/{user_id}", headers=bearer(provisioner)).status_code == 204


# -- the audit log and the permissions report -------------------------------------------------


def _audit_since(stack: RunningStack, marks: dict[str, int], into: Path) -> Path:
    """The audit lines written since `marks` (file sizes), copied to `into`: this test's traffic only."""
    into.mkdir(exist_ok=True)
    for log in (stack.local_dir / "audit").glob("*.jsonl"):
        (into / log.name).write_bytes(log.read_bytes()[marks.get(log.name, 0) :])
    return into


def _marks(stack: RunningStack) -> dict[str, int]:
    return {log.name: log.stat().st_size for log in (stack.local_dir / "audit").glob("*.jsonl")}


def _block(report: str, client: str) -> str:
    lines = report.splitlines()
    start = lines.index(client)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ")), len(lines))
    return "\n".join(lines[start:end])


@AUDIT
def test_the_audit_log_holds_ids_and_permissions_never_tokens_or_names(
    app_only_stack: RunningStack, http: httpx.Client, alice: str, tmp_path: Path
) -> None:
    marks = _marks(app_only_stack)
    assert http.get("/tasks", headers=bearer(alice)).status_code == 200
    audit = _audit_since(app_only_stack, marks, tmp_path / "audit")
    lines = [json.loads(line) for f in sorted(audit.glob("*.jsonl")) for line in f.read_text().splitlines()]
    by_service = {line["service"]: line for line in lines}
    assert by_service["api"] | {"time": None, "correlation_id": None} == {
        "time": None,
        "correlation_id": None,
        "service": "api",
        "decision": "allow",
        "reason": "permission",
        # Ids, so an action can be traced to a person (never a name, an e-mail or a token).
        "object_id": ALICE_OID,
        "client_app_id": app_only_stack.info["cli_client_id"],
        "token_type": "delegated",
        "tenant_id": app_only_stack.info["tenants"]["contoso"],
        "permissions": ["Tasks.Read"],
        # What the check would have taken instead, least privileged first: nothing narrower was possible.
        "accepted": {"Tasks.Read": ["Tasks.Read", "Tasks.ReadWrite"]},
        "route": "/tasks",
        "method": "GET",
        "status": 200,
    }
    assert by_service["downstream-api"]["client_app_id"] == app_id("api")
    assert by_service["downstream-api"]["permissions"] == ["Records.Read"]
    # One correlation id (the W3C trace id) joins the two tiers' lines of this request.
    assert by_service["downstream-api"]["correlation_id"] == by_service["api"]["correlation_id"]
    text = "".join(f.read_text() for f in audit.glob("*.jsonl"))
    assert "eyJ" not in text and "alice" not in text.lower()


@AUDIT
def test_permissions_report_flags_the_write_scope_until_a_write_uses_it(
    app_only_stack: RunningStack, http: httpx.Client, alice: str, tmp_path: Path
) -> None:
    marks = _marks(app_only_stack)
    assert http.get("/tasks", headers=bearer(alice)).status_code == 200
    assert http.get("/me", headers=bearer(alice)).status_code == 200
    reads = zt(
        app_only_stack,
        "permissions-report",
        "--strict",
        "--audit",
        str(_audit_since(app_only_stack, marks, tmp_path / "reads")),
    )
    assert reads.returncode == 1, reads.stdout + reads.stderr
    cli = _block(reads.stdout, "cli")
    assert "  used:    api/Tasks.Read\n" in cli + "\n"
    assert "  UNUSED:  api/Tasks.ReadWrite" in cli
    # The api, on alice's behalf, read only as well.
    unused_by_api = next(line for line in _block(reads.stdout, "api").splitlines() if "UNUSED" in line)
    assert "downstream-api/Records.ReadWrite" in unused_by_api.split(", ")

    assert http.post("/tasks", json={"title": "a write"}, headers=bearer(alice)).status_code == 201
    both = zt(
        app_only_stack, "permissions-report", "--audit", str(_audit_since(app_only_stack, marks, tmp_path / "both"))
    )
    assert both.returncode == 0
    cli = _block(both.stdout, "cli")
    # Graph's own grants are not in these APIs' audit logs (Graph is Microsoft's API, not ours).
    unused = [line for line in cli.splitlines() if "UNUSED" in line and "graph/" not in line]
    assert not unused and "api/Tasks.ReadWrite" in cli.split("used:")[1]


# -- downstream-api's app-only routes, called directly --------------------------------------


@APP_ONLY
@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("GET", "/reports/tenant", "Records.Report.All"),
        ("GET", "/users", "Users.Manage"),
        ("POST", "/users", "Users.Manage"),
        ("GET", f"/users/{UNKNOWN_ID}", "Users.Manage"),
        ("PATCH", f"/users/{UNKNOWN_ID}", "Users.Manage"),
        ("DELETE", f"/users/{UNKNOWN_ID}", "Users.Manage"),
    ],
)
def test_downstream_app_only_routes_take_the_apis_app_token_with_that_role_only(
    app_only_stack: RunningStack, method: str, path: str, role: str
) -> None:
    downstream = apis(app_only_stack)["downstream-api"]
    api_sp = "972293a9-cd80-4a39-8f79-c549415936c5"
    other = "Users.Manage" if role == "Records.Report.All" else "Records.Report.All"
    right = build_app_only_token(app_only_stack, downstream, [role], oid=api_sp, sub=api_sp)
    wrong_role = build_app_only_token(app_only_stack, downstream, [other], oid=api_sp, sub=api_sp)
    users_token = build_access_token(app_only_stack, downstream, scp="Records.ReadWrite", roles=[role])
    tls = ssl.create_default_context(cafile=app_only_stack.info["ca_bundle"])
    with httpx.Client(
        base_url=app_only_stack.info["downstream_api"], verify=tls, timeout=10, trust_env=False
    ) as client:
        for token in (wrong_role, users_token):
            r = client.request(method, path, headers=bearer(token), json={})
            assert r.status_code == 403, r.text
            assert r.headers["www-authenticate"] == insufficient("downstream-api", role)
        r = client.request(method, path, headers=bearer(right), json={})
    # Past the permission check: an answer about the request itself, never an auth refusal.
    assert r.status_code in {"GET": (200, 404), "POST": (422,), "PATCH": (404,), "DELETE": (404,)}[method], r.text
