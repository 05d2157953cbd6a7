"""`zt permissions-report`: what each client is granted, against what the audit logs show it used.

# zt: overprivileged-permissions
Granted, per client application and resource API, is read from the registrations
(infra/registrations.yaml): the scopes and app roles the client requests
(required_resource_access), the scopes a resource pre-authorizes it for, and the app roles an
administrator consented to (admin_consents in the demo directory, which in Azure are the app
role assignments of the tenant). Used is read from the APIs' audit logs (zerotrust.audit): the
permission that let each request through. A permission granted and never used is flagged
UNUSED: remove it, or find out why it is held. With --strict the command fails when any is,
so a pipeline can keep the registrations at least privilege.

The report is only as good as the traffic behind the logs: run the app's real scenarios (or the
end-to-end tests) first; a permission that only a rare path needs shows as unused until then.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml


@dataclass(frozen=True, order=True)
class Grant:
    resource: str  # the resource API's registration name
    kind: str  # "scope" (delegated) or "app role" (application)
    value: str


@dataclass
class ClientReport:
    client: str
    granted: set[Grant] = field(default_factory=set)
    used: set[Grant] = field(default_factory=set)

    @property
    def unused(self) -> set[Grant]:
        return self.granted - self.used

    @property
    def used_without_grant(self) -> set[Grant]:
        """Seen in the logs but not granted here: the registrations and the tenant disagree."""
        return self.used - self.granted


def granted(manifest: dict[str, Any], directory: dict[str, Any] | None) -> dict[str, set[Grant]]:
    apps: dict[str, Any] = manifest["applications"]
    grants: dict[str, set[Grant]] = {name: set() for name in apps}
    for client, spec in apps.items():
        for resource, need in (spec.get("required_resource_access") or {}).items():
            grants[client] |= {Grant(resource, "scope", s) for s in (need or {}).get("scopes", [])}
            grants[client] |= {Grant(resource, "app role", r) for r in (need or {}).get("app_roles", [])}
    for resource, spec in apps.items():
        for pre in spec.get("pre_authorized_applications") or []:
            grants.setdefault(pre["application"], set()).update(Grant(resource, "scope", s) for s in pre["scopes"])
    for tenant in ((directory or {}).get("tenants") or {}).values():
        for consent in tenant.get("admin_consents") or []:
            grants.setdefault(consent["client"], set()).update(
                Grant(consent["resource"], "app role", r) for r in consent.get("app_roles", [])
            )
            grants[consent["client"]].update(Grant(consent["resource"], "scope", s) for s in consent.get("scopes", []))
    return grants


def audit_lines(paths: Iterable[Path]) -> Iterable[dict[str, Any]]:
    for path in paths:
        files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
        for file in files:
            for line in file.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a torn last line of a log being written; the rest still counts
                if isinstance(entry, dict):
                    yield entry


def used(manifest: dict[str, Any], lines: Iterable[dict[str, Any]]) -> dict[str, set[Grant]]:
    apps: dict[str, Any] = manifest["applications"]
    by_app_id = {spec["application_id"]: name for name, spec in apps.items()}
    seen: dict[str, set[Grant]] = {}
    for entry in lines:
        client = by_app_id.get(str(entry.get("client_app_id")), f"unknown client {entry.get('client_app_id')}")
        resource = str(entry.get("service"))
        kind = "app role" if entry.get("token_type") == "app-only" else "scope"
        # Only answered requests count as use: a request refused after the check (e.g. a deactivated
        # user's 403) still shows the permission was needed, so 4xx counts too, 5xx does not.
        if int(entry.get("status", 500)) >= 500 or not entry.get("permissions"):
            continue
        seen.setdefault(client, set()).update(Grant(resource, kind, p) for p in entry.get("permissions") or [])
    return seen


def report(manifest: dict[str, Any], directory: dict[str, Any] | None, logs: Iterable[Path]) -> list[ClientReport]:
    grants = granted(manifest, directory)
    uses = used(manifest, audit_lines(logs))
    return [
        ClientReport(client, grants.get(client, set()), uses.get(client, set()))
        for client in sorted(set(grants) | set(uses))
        if grants.get(client) or uses.get(client)
    ]


def _names(grants: Iterable[Grant]) -> str:
    return ", ".join(
        f"{g.resource}/{g.value}" + (" (app role)" if g.kind == "app role" else "") for g in sorted(grants)
    )


def render(reports: list[ClientReport], out: TextIO) -> int:
    """Print the report; return how many granted permissions are unused."""
    unused = 0
    for r in reports:
        out.write(f"{r.client}\n")
        out.write(f"  granted: {_names(r.granted) or '-'}\n")
        out.write(f"  used:    {_names(r.used & r.granted) or '-'}\n")
        if r.unused:
            out.write(f"  UNUSED:  {_names(r.unused)}\n")
            unused += len(r.unused)
        if r.used_without_grant:
            out.write(f"  used but not granted in the registrations: {_names(r.used_without_grant)}\n")
    out.write(f"\n{unused} granted permission(s) unused.\n" if unused else "\nEvery granted permission was used.\n")
    return unused


def load(manifest: Path, directory: Path | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    loaded: dict[str, Any] = yaml.safe_load(manifest.read_text())
    demo = yaml.safe_load(directory.read_text()) if directory and directory.exists() else None
    return loaded, demo


def command(manifest: Path, directory: Path, logs: list[Path], strict: bool) -> int:
    """`zt permissions-report`: 0, or 1 (--strict) when a grant is unused; 2 when there is nothing to read."""
    missing = [str(p) for p in logs if not p.exists()]
    if missing:
        print(
            f"zt permissions-report: no audit log at {', '.join(missing)}; run the stack (`make run`) and use it first",
            file=sys.stderr,
        )
        return 2
    try:
        registrations, demo = load(manifest, directory)
    except (OSError, ValueError) as exc:
        print(f"zt permissions-report: {exc}", file=sys.stderr)
        return 2
    unused = render(report(registrations, demo, logs), sys.stdout)
    return 1 if unused and strict else 0
