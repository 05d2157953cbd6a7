"""One shape for every service, kept: a reader who knows one service knows all three.

The same four files in the same roles, settings on the shared base, the app's state reached only
through dependencies.py, one name and one syntax for the tenant allowlist, and modules short enough to
read (the emulator's HTML pages excepted).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from api.settings import Settings as ApiSettings
from downstream_api.settings import Settings as DownstreamSettings
from web.settings import Settings as WebSettings
from zerotrust.settings import ApiSettings as SharedApiSettings
from zerotrust.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {
    "web": ROOT / "web/src/web",
    "api": ROOT / "api/src/api",
    "downstream-api": ROOT / "downstream-api/src/downstream_api",
}
MAX_LINES = 300
EXEMPT = {ROOT / "identity-emulator/src/identity_emulator/pages.py"}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_has_the_same_four_files_in_the_same_roles(service: str) -> None:
    folder = SERVICES[service]
    for name in ("main.py", "settings.py", "dependencies.py"):
        assert (folder / name).is_file(), f"{service}: no {name}"
    assert (folder / "routes" / "__init__.py").is_file(), f"{service}: no routes/"
    main = (folder / "main.py").read_text()
    assert "def create_app(" in main and "async def lifespan(" in main
    assert main.count("app.state.clients = Clients(") == 1, "one lifespan builds one typed object of clients"
    assert "class Clients" in (folder / "dependencies.py").read_text()


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_apps_state_is_reached_only_through_dependencies(service: str) -> None:
    for path in sorted(SERVICES[service].rglob("*.py")):
        if path.name == "dependencies.py":
            continue
        for line in path.read_text().splitlines():
            # main.py's lifespan writes it; nothing else touches it.
            written = path.name == "main.py" and line.strip().startswith("app.state.clients = ")
            assert "app.state" not in line or written, f"{path.relative_to(ROOT)}: {line.strip()}"
    for template in sorted(SERVICES[service].rglob("*.html")):
        assert "app.state" not in template.read_text(), template


def test_every_settings_class_subclasses_the_shared_base() -> None:
    assert issubclass(WebSettings, ServiceSettings)
    assert issubclass(ApiSettings, SharedApiSettings) and issubclass(DownstreamSettings, SharedApiSettings)


def test_the_tenant_allowlist_has_one_name_and_one_syntax(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
    for settings, prefix in ((WebSettings, "WEB"), (ApiSettings, "API"), (DownstreamSettings, "DOWNSTREAM")):
        monkeypatch.setenv(f"{prefix}_ALLOWED_TENANTS", f"{a},{b}")
        assert settings().tenants == (a, b), prefix
        monkeypatch.setenv(f"{prefix}_ALLOWED_TENANTS", f'["{b}"]')
        assert settings().tenants == (b,), prefix
        monkeypatch.delenv(f"{prefix}_ALLOWED_TENANTS")
        assert settings().tenants == (settings().tenant_id,), prefix
    for path in [*SERVICES.values(), ROOT / "zerotrust/src", ROOT / "devtools/src"]:
        for source in path.rglob("*.py"):
            text = source.read_text()
            assert not re.search(r"extra_tenant_ids|allowed_tenant_ids", text), source


def test_no_module_is_longer_than_a_reader_can_hold() -> None:
    long = []
    for member in ("zerotrust", "web", "api", "downstream-api", "identity-emulator", "devtools"):
        for path in (ROOT / member / "src").rglob("*.py"):
            lines = len(path.read_text().splitlines())
            if lines > MAX_LINES and path not in EXEMPT:
                long.append(f"{path.relative_to(ROOT)}: {lines}")
    assert not long, long


def test_article_markers_stand_on_their_own_line() -> None:
    trailing = []
    for member in ("zerotrust", "web", "api", "downstream-api", "identity-emulator", "devtools"):
        for path in (ROOT / member / "src").rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if "# zt: " in line and code.strip() and not _in_string(line):
                    trailing.append(f"{path.relative_to(ROOT)}:{number}")
    assert not trailing, trailing


def _in_string(line: str) -> bool:
    try:
        ast.parse(line.strip())
    except SyntaxError:
        return True
    return '"# zt:' in line or "'# zt:" in line
