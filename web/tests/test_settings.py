"""Settings: local defaults that match the registration manifest; unsafe values refused in production."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from identity_emulator.manifest import load_directory
from identity_emulator.settings import EmulatorSettings
from pydantic import ValidationError
from web.settings import Settings
from web.signin import safe_next

REPO = Path(__file__).resolve().parents[2]
# The web's managed identity's object id (infra/registrations.yaml): Azure Cache for Redis's user for it.
WEB_MI = "2e2df95e-22f0-462f-87d4-67941fc6141b"


@pytest.fixture(autouse=True)
def _no_web_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("WEB_"):
            monkeypatch.delenv(name)


def test_local_defaults_match_the_manifest() -> None:
    directory = load_directory(
        REPO / "infra" / "registrations.yaml", REPO / "identity-emulator" / "demo" / "directory.yaml"
    )
    web, api = directory.by_name["web"], directory.by_name["api"]
    emulator = EmulatorSettings()
    s = Settings()
    assert s.client_id == web.application_id
    assert s.redirect_uri in web.redirect_uris
    assert s.post_logout_redirect_uri in web.post_logout_redirect_uris
    # Incremental consent: read at sign-in, write when first needed, the admin-only scope apart.
    assert s.api_scopes == (f"{api.identifier_uri}/Tasks.Read",)
    assert s.api_write_scopes == (f"{api.identifier_uri}/Tasks.ReadWrite",)
    assert s.api_org_scopes == (f"{api.identifier_uri}/Tasks.Read.All",)
    assert api.scopes["Tasks.Read.All"].admin_consent_required
    assert s.admin_consent_url == f"{emulator.front_base}/admin"
    assert s.tenants == (directory.home_tenant_id,)
    assert s.authority == f"{emulator.issuer_base}/{directory.home_tenant_id}"
    assert s.idp_origin == emulator.front_base
    assert s.instance_discovery is False
    assert s.public_origin == "http://localhost:8000" and urlsplit(s.redirect_uri).port == s.port
    assert s.api_url == "https://localhost:8001"


def test_azure_client_id_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000bad")
    monkeypatch.setenv("CLIENT_ID", "00000000-0000-0000-0000-000000000bad")
    assert Settings().client_id == "1bfffa1d-5b3b-44d5-a14d-ff982dd305d0"
    monkeypatch.setenv("WEB_CLIENT_ID", "11111111-1111-1111-1111-111111111111")
    assert Settings().client_id == "11111111-1111-1111-1111-111111111111"


def test_a_sound_production_configuration_is_accepted(production_ok: dict[str, object]) -> None:
    s = Settings(**production_ok)  # type: ignore[arg-type]
    assert "form-action 'self' https://login.microsoftonline.com" in s.csp


@pytest.mark.parametrize(
    "change, complaint",
    [
        ({"redirect_uri": "http://web.example.net/auth/callback"}, "redirect_uri"),
        ({"post_logout_redirect_uri": "http://web.example.net/"}, "post_logout_redirect_uri"),
        ({"cookie_secure": False}, "cookie_secure"),
        ({"api_url": "http://api.internal.example.net"}, "api_url"),
        ({"idp_origin": "http://localhost:8444"}, "idp_origin"),
        ({"end_session_endpoint": "http://login.example.net/logout"}, "end_session_endpoint"),
        # Sealed blobs, but the token and every request would cross the network in the clear.
        ({"session_store": f"redis://{WEB_MI}@cache.example.net:6379/0"}, "session_store"),
        ({"session_store": f"redis://{WEB_MI}@10.0.0.4:6379"}, "session_store"),
    ],
)
def test_unsafe_values_are_refused_in_production(
    change: dict[str, object], complaint: str, production_ok: dict[str, object]
) -> None:
    with pytest.raises(ValidationError, match=f"WEB_{complaint.upper()}"):
        Settings(**{**production_ok, **change})  # type: ignore[arg-type]


def test_the_session_store_is_sqlite_or_redis_over_tls_off_this_machine(production_ok: dict[str, object]) -> None:
    assert Settings().session_store == "sqlite"
    for url in (f"rediss://{WEB_MI}@cache.example.net:6380/0", f"redis://{WEB_MI}@127.0.0.1:6379/0"):
        assert Settings(**{**production_ok, "session_store": url}).session_store == url  # type: ignore[arg-type]
    # A laptop may point at a Redis elsewhere on its network; a deployment may not (above).
    assert Settings(session_store=f"redis://{WEB_MI}@redis.lan:6379/0").session_store.endswith("@redis.lan:6379/0")


def test_a_redis_password_is_refused_wherever_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_SESSION_STORE_PASSWORD", "an-access-key")
    with pytest.raises(ValidationError, match="session_store_password") as refused:
        Settings(session_store=f"rediss://{WEB_MI}@cache.example.net:6380/0")
    [shown] = [str(e["msg"]) for e in refused.value.errors()]
    assert "managed identity token" in shown and "an-access-key" not in shown


@pytest.mark.parametrize(
    "value, complaint",
    [
        ("memory", "'sqlite' or a redis:// or rediss:// URL"),
        ("postgresql://db/sessions", "'sqlite' or a redis:// or rediss:// URL"),
        ("redis://", "must name a host"),
        ("redis://127.0.0.1:port/0", "port that is not a number"),
        ("redis://127.0.0.1:99999/0", "port"),
        ("redis://:secret@127.0.0.1:6379/0", "must not carry a password"),
        (f"rediss://{WEB_MI}:secret@cache.example.net:6380/0", "must not carry a password"),  # pragma: allowlist secret
        ("rediss://cache.example.net:6380/0", "object id as the user"),
        ("rediss://web@cache.example.net:6380/0", "object id as the user"),
        (f"rediss://{WEB_MI}@cache.example.net/0?ssl_cert_reqs=none", "no options"),
        (f"redis://{WEB_MI}@127.0.0.1:6379/sessions", "database number"),
    ],
)
def test_a_malformed_session_store_is_refused_with_the_reason(value: str, complaint: str) -> None:
    with pytest.raises(ValidationError, match="session_store") as refused:
        Settings(session_store=value)
    # What `python -m web` prints (zerotrust.serve.load_settings): the reason, never the value given.
    [shown] = [str(e["msg"]) for e in refused.value.errors()]
    assert complaint in shown and "secret" not in shown


def test_local_http_redirect_is_fine_in_development_and_the_authority_is_always_https() -> None:
    Settings(cookie_secure=False, redirect_uri="http://localhost:8000/auth/callback")
    with pytest.raises(ValidationError, match="https"):
        Settings(authority="http://localhost:8443/contoso")
    with pytest.raises(ValidationError, match="empty"):
        Settings(api_scopes=())
    # Signing in at /organizations needs the allowlist: without one, anyone's tenant would do.
    with pytest.raises(ValidationError, match="WEB_ALLOWED_TENANTS"):
        Settings(authority="https://localhost:8443/organizations")
    with pytest.raises(ValidationError, match="idle"):
        Settings(session_idle_timeout=10_000, session_absolute_timeout=100)


def test_cookie_names_carry_the_host_prefix_only_when_secure() -> None:
    assert Settings().sign_in().session_cookie == "__Host-session"
    assert Settings(cookie_secure=False).sign_in().session_cookie == "session"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("/tasks", "/tasks"),
        ("/tasks?filter=open#x", "/tasks?filter=open#x"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("tasks", "/"),
        ("//evil.example/x", "/"),
        ("///evil.example", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("/x\r\nLocation: https://evil.example", "/"),
        ("/\tx", "/"),
        ("/" + "a" * 600, "/"),
    ],
)
def test_next_accepts_only_same_origin_relative_paths(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected
