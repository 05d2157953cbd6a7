"""The emulator's part of .local/stack.json, read from the same manifest and directory it serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .directory import ADMIN_ROLES
from .manifest import load_directory
from .settings import EmulatorSettings


def home_tenant_id(settings: EmulatorSettings | None = None) -> str:
    settings = settings or EmulatorSettings()
    return load_directory(settings.manifest, settings.directory).home_tenant_id


def stack_info(state_dir: Path, settings: EmulatorSettings | None = None) -> dict[str, Any]:
    settings = settings or EmulatorSettings(state_dir=state_dir)
    d = load_directory(settings.manifest, settings.directory)
    base = settings.issuer_base
    api, downstream = d.by_name["api"], d.by_name["downstream-api"]
    home = d.tenants[d.home_tenant_id]
    return {
        "emulator": base,
        "emulator_front_channel": settings.front_base,
        "emulator_admin": f"{settings.front_base}/admin",
        "authority": f"{base}/{home.tenant_id}",
        "authorities": {t.name: f"{base}/{t.tenant_id}" for t in d.tenants.values()},
        "tenants": {t.name: t.tenant_id for t in d.tenants.values()},
        "cli_client_id": d.by_name["cli"].application_id,
        "api_scopes": [f"{api.identifier_uri}/{s}" for s in ("Tasks.Read", "Tasks.ReadWrite")],
        "downstream_scopes": [f"{downstream.identifier_uri}/{s}" for s in ("Records.Read", "Records.ReadWrite")],
        "demo_users": [u.upn for t in d.tenants.values() for u in t.users.values()],
        # zt: permissions-require-admin-consent - the one who may open the admin view and grant tenant-wide consent.
        "demo_administrator": next(u.upn for u in home.users.values() if u.holds(ADMIN_ROLES)),
        "demo_password": (state_dir / "demo-password").read_text().strip(),
    }
