"""The api's own rules, in process: deny by default, settings that match the manifest, production refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from api.main import create_app
from api.settings import Settings
from fastapi.testclient import TestClient
from pydantic import ValidationError
from zerotrust.docs import PUBLIC_PATHS
from zerotrust.routecheck import served_paths, unguarded_routes

MANIFEST = yaml.safe_load((Path(__file__).resolve().parents[2] / "infra" / "registrations.yaml").read_text())
APPS = MANIFEST["applications"]
TENANT = "11111111-2222-4333-8444-555555555555"


def test_every_route_but_healthz_requires_a_token_and_a_permission() -> None:
    app = create_app(Settings())
    assert {"/healthz", "/me", "/tasks", "/tasks/{task_id}"} <= served_paths(app.routes)
    assert unguarded_routes(app.routes, public={"/healthz", *PUBLIC_PATHS}) == []


def test_the_check_catches_an_open_route() -> None:
    app = create_app(Settings())

    @app.get("/tasks/export")
    async def export() -> list[str]:
        return []

    assert unguarded_routes(app.routes, public={"/healthz", *PUBLIC_PATHS}) == ["['GET'] /tasks/export"]


def test_defaults_match_the_registration_manifest() -> None:
    s = Settings()
    assert s.client_id == APPS["api"]["application_id"]
    assert s.app_only_client_id == APPS["api-app-only"]["application_id"]
    # Users come through the web app and the CLI; the daemon and the provisioning client app-only.
    assert set(s.allowed_client_ids) == {APPS["web"]["application_id"], APPS["cli"]["application_id"]}
    assert set(s.app_only_client_ids) == {APPS["daemon"]["application_id"], APPS["provisioner"]["application_id"]}
    assert s.downstream_app_id_uri == f"api://{APPS['downstream-api']['application_id']}"


def test_azure_client_id_is_never_taken_for_the_apps_own_id(monkeypatch: pytest.MonkeyPatch) -> None:
    # DefaultAzureCredential reads AZURE_CLIENT_ID as a user-assigned identity: a different thing.
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000000")
    assert Settings().client_id == APPS["api"]["application_id"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("API_AUTHORITY", f"https://localhost:8443/{TENANT}"),
        ("API_DOWNSTREAM_URL", "http://downstream.example"),
        ("API_PUBLIC_URL", ""),
    ],
)
def test_production_refuses_local_or_plain_http_endpoints(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv("API_ENVIRONMENT", "production")
    monkeypatch.setenv("API_AUTHORITY", f"https://login.microsoftonline.com/{TENANT}")
    monkeypatch.setenv("API_INSTANCE_DISCOVERY", "true")
    monkeypatch.setenv("API_DOWNSTREAM_URL", "https://downstream.example")
    monkeypatch.setenv("API_PUBLIC_URL", "https://api.example")
    Settings()  # the safe combination is accepted
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name):
        Settings()


def test_docs_are_served_from_this_host_with_no_inline_script() -> None:
    client = TestClient(create_app(Settings()), base_url=Settings().public_base_url)
    page = client.get("/docs")
    assert page.status_code == 200
    assert "<script>" not in page.text and "cdn" not in page.text.lower()
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    # Only the listed files: nothing else of the package (or the disk) is reachable.
    assert client.get("/docs/assets/index.html").status_code == 404
    assert client.get("/docs/assets/..%2F__init__.py").status_code == 404


@pytest.mark.guidance("developer-strategy-application-permissions")
def test_the_apis_own_app_only_token_is_never_used_for_a_users_request() -> None:
    from api.downstream import AppHop, Downstream
    from zerotrust.tokens import Principal

    claims = {
        "tid": "t",
        "oid": "o",
        "sub": "s",
        "aud": "a",
        "iss": "i",
        "azp": APPS["web"]["application_id"],
        "ver": "2.0",
        "exp": 0,
    }
    user = Principal.from_claims({**claims, "scp": "Tasks.Read", "idtyp": "user"})
    daemon = Principal.from_claims({**claims, "roles": ["Tasks.Report.All"], "idtyp": "app"})
    down = Downstream(session=None, obo=None, scope_base="api://x")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="on-behalf-of"):
        down.as_app(user, "cid")
    assert isinstance(down.as_app(daemon, "cid"), AppHop)
