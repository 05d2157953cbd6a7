"""The registration manifest keeps the app-registration rules of the guidance (article 7)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml

MANIFEST = Path(__file__).resolve().parents[2] / "infra" / "registrations.yaml"
LOOPBACK = {"localhost", "127.0.0.1", "[::1]"}


def _apps() -> dict[str, dict]:
    apps: dict[str, dict] = yaml.safe_load(MANIFEST.read_text())["applications"]
    return apps


def test_redirect_uris_are_https_except_loopback_and_never_wildcards() -> None:
    for name, app in _apps().items():
        for uri in app.get("redirect_uris", []) + app.get("post_logout_redirect_uris", []):
            parts = urlsplit(uri)
            assert "*" not in uri, f"{name}: wildcard redirect URI {uri}"
            assert parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK), (
                f"{name}: {uri} must be https (http is allowed for loopback only)"
            )


def test_no_implicit_grant_and_no_secrets() -> None:
    for name, app in _apps().items():
        implicit = app.get("implicit_grant", {})
        assert not implicit.get("access_tokens") and not implicit.get("id_tokens"), f"{name}: implicit grant on"
        assert not any("secret" in key for key in app), f"{name}: declares a client secret"


def test_every_confidential_client_authenticates_with_a_federated_credential() -> None:
    for name, app in _apps().items():
        if app.get("client_type", "confidential") == "confidential":
            assert app.get("federated_credentials"), f"{name}: no managed identity as federated credential"
            for fed in app["federated_credentials"]:
                assert fed["audiences"] == ["api://AzureADTokenExchange"]


def test_public_clients_hold_no_credentials() -> None:
    for name, app in _apps().items():
        if app.get("client_type") == "public":
            assert not app.get("federated_credentials") and not app.get("certificate_credentials"), name


def test_admin_only_scopes_are_marked_and_preauthorization_is_narrow() -> None:
    apps = _apps()
    assert any(s["admin_consent_required"] for s in apps["api"]["scopes"]), "an admin-consent scope exists"
    # Only the api may call downstream-api on a user's behalf.
    assert [p["application"] for p in apps["downstream-api"]["pre_authorized_applications"]] == ["api"]
    # The web app is never pre-authorized: the user sees (and can refuse) the consent prompt.
    assert all(p["application"] != "web" for p in apps["api"].get("pre_authorized_applications", []))
