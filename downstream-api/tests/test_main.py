"""Starting downstream-api: HTTPS only, configuration mistakes reported by setting name, exit code 2."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from downstream_api.main import create_app
from downstream_api.settings import Settings

from zerotrust import serve as entry


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("DOWNSTREAM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DOWNSTREAM_STATE_DIR", str(tmp_path))


def _serve(settings: Settings) -> None:
    entry.serve(
        create_app(settings),
        "downstream-api",
        "DOWNSTREAM",
        host=settings.host,
        port=settings.port,
        tls_cert=settings.tls_cert,
        tls_key=settings.tls_key,
    )


def test_refuses_to_start_without_tls() -> None:
    with pytest.raises(SystemExit, match="DOWNSTREAM_TLS_CERT and DOWNSTREAM_TLS_KEY are required"):
        _serve(Settings())


def test_missing_certificate_files_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOWNSTREAM_TLS_CERT", str(tmp_path / "nope.pem"))
    monkeypatch.setenv("DOWNSTREAM_TLS_KEY", str(tmp_path / "nope-key.pem"))
    with pytest.raises(SystemExit, match=r"nope\.pem does not exist"):
        _serve(Settings())


def test_bad_settings_are_reported_by_name_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOWNSTREAM_AUTHORITY", "http://localhost:8443/common")
    with pytest.raises(SystemExit) as exited:
        entry.load_settings(Settings, "downstream-api", "DOWNSTREAM")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("downstream-api: DOWNSTREAM_AUTHORITY: ") and "Traceback" not in err
    monkeypatch.setenv("DOWNSTREAM_AUTHORITY", "https://localhost:8443/9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d")
    monkeypatch.setenv("DOWNSTREAM_ENVIRONMENT", "production")
    with pytest.raises(SystemExit):
        entry.load_settings(Settings, "downstream-api", "DOWNSTREAM")
    assert "refused in production" in capsys.readouterr().err


def test_serves_https_on_loopback_8002_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("cert.pem", "key.pem"):
        (tmp_path / name).write_text("test")
    monkeypatch.setenv("DOWNSTREAM_TLS_CERT", str(tmp_path / "cert.pem"))
    monkeypatch.setenv("DOWNSTREAM_TLS_KEY", str(tmp_path / "key.pem"))
    seen: dict[str, Any] = {}
    monkeypatch.setattr(entry.uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    _serve(Settings())
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8002)
    assert seen["ssl_certfile"] == str(tmp_path / "cert.pem")
    assert seen["ssl_keyfile"] == str(tmp_path / "key.pem")
    assert seen["server_header"] is False and seen["proxy_headers"] is False
    assert seen["http"] == "httptools"  # the C parser: h11 cost every tier a quarter of its CPU or more


def test_graph_on_behalf_of_uses_the_configured_certificate_where_no_managed_identity_exists(tmp_path: Path) -> None:
    # The same credential choice as every tier: a certificate file set means the certificate, never a
    # managed identity that does not exist there.
    import datetime as dt

    from cryptography.hazmat.primitives import serialization
    from downstream_api.dependencies import Clients
    from fastapi.testclient import TestClient
    from identity_emulator.certificates import certificate, common_name, private_pem, rsa_key

    key, now = rsa_key(), dt.datetime.now(dt.UTC)
    cert = certificate(key, common_name("downstream-api"), not_before=now, not_after=now + dt.timedelta(days=1))
    pem = tmp_path / "client.pem"
    pem.write_bytes(private_pem(key) + cert.public_bytes(serialization.Encoding.PEM))
    pem.chmod(0o600)
    app = create_app(Settings(client_certificate_file=pem))
    with TestClient(app):
        clients = app.state.clients
        assert isinstance(clients, Clients)
        credential = clients.obo._msal._credential
    assert set(credential) == {"private_key", "public_certificate"}
