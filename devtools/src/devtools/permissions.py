"""`zt permissions-report`: what each client is granted, against what the audit logs show it used.

# zt: overprivileged-permissions
Granted, per client application and resource API, is read from the registrations
(infra/registrations.yaml): the scopes and app roles the client requests
(required_resource_access), the scopes a resource pre-authorizes it for, and the app roles an
administrator consented to (admin_consents in the demo directory, which in Azure are the app
role assignments of the tenant). Used is read from the audit logs (zerotrust.audit for the app's
tiers; the emulator writes Graph's, identity_emulator/graph_audit.py): the permission that let each
request through, and what else the check would have accepted, least privileged first.

A permission granted and never used is flagged UNUSED: remove it, or find out why it is held. One used,
but only by calls that a narrower permission would have served as well (ReadWrite held, only reads
made), is flagged REDUCIBLE, with the narrower one: grant that instead. With --strict the command fails
when any permission is either, so a pipeline can keep the registrations at least privilege.

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


# For each permission used: what each call made with it would have accepted instead, least privileged first.
Uses = dict[Grant, list[list[str]]]


@dataclass
class ClientReport:
    client: str
    granted: set[Grant] = field(default_factory=set)
    uses: Uses = field(default_factory=dict)

    @property
    def used(self) -> set[Grant]:
        return set(self.uses)

    @property
    def unused(self) -> set[Grant]:
        return self.granted - self.used

    @property
    def reducible(self) -> dict[Grant, Grant]:
        """Granted permissions used only where a narrower one would have done, with that narrower one."""
        found: dict[Grant, Grant] = {}
        for grant in sorted(self.granted & self.used):
            narrower = [calls[: calls.index(grant.value)] if grant.value in calls else [] for calls in self.uses[grant]]
            common = [p for p in narrower[0] if all(p in other for other in narrower[1:])] if narrower else []
            if common:
                found[grant] = Grant(grant.resource, grant.kind, common[0])
        return found

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


def used(manifest: dict[str, Any], lines: Iterable[dict[str, Any]]) -> dict[str, Uses]:
    apps: dict[str, Any] = manifest["applications"]
    by_app_id = {spec["application_id"]: name for name, spec in apps.items()}
    seen: dict[str, Uses] = {}
    for entry in lines:
        client = by_app_id.get(str(entry.get("client_app_id")), f"unknown client {entry.get('client_app_id')}")
        resource = str(entry.get("service"))
        kind = "app role" if entry.get("token_type") == "app-only" else "scope"
        # Only answered requests count as use: a request refused after the check (e.g. a deactivated
        # user's 403) still shows the permission was needed, so 4xx counts too, 5xx does not.
        if int(entry.get("status", 500)) >= 500 or not entry.get("permissions"):
            continue
        recorded = entry.get("accepted")
        accepted: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
        for p in entry.get("permissions") or []:
            # A line without what else was accepted (an older log) counts as needing exactly what it used.
            alternatives = accepted.get(p)
            calls = [str(a) for a in alternatives] if isinstance(alternatives, list) else [str(p)]
            seen.setdefault(client, {}).setdefault(Grant(resource, kind, str(p)), []).append(calls)
    return seen


def report(manifest: dict[str, Any], directory: dict[str, Any] | None, logs: Iterable[Path]) -> list[ClientReport]:
    grants = granted(manifest, directory)
    uses = used(manifest, audit_lines(logs))
    return [
        ClientReport(client, grants.get(client, set()), uses.get(client, {}))
        for client in sorted(set(grants) | set(uses))
        if grants.get(client) or uses.get(client)
    ]


def _names(grants: Iterable[Grant]) -> str:
    return ", ".join(
        f"{g.resource}/{g.value}" + (" (app role)" if g.kind == "app role" else "") for g in sorted(grants)
    )


def render(reports: list[ClientReport], out: TextIO) -> int:
    """Print the report; return how many granted permissions are unused or reducible."""
    unused = reducible = 0
    for r in reports:
        out.write(f"{r.client}\n")
        out.write(f"  granted: {_names(r.granted) or '-'}\n")
        out.write(f"  used:    {_names(r.used & r.granted) or '-'}\n")
        if r.unused:
            out.write(f"  UNUSED:  {_names(r.unused)}\n")
            unused += len(r.unused)
        for broad, narrow in r.reducible.items():
            out.write(
                f"  REDUCIBLE: {_names([broad])} -> {narrow.value} (every call made with it would have taken that)\n"
            )
            reducible += 1
        if r.used_without_grant:
            out.write(f"  used but not granted in the registrations: {_names(r.used_without_grant)}\n")
    if unused or reducible:
        out.write(f"\n{unused} granted permission(s) unused, {reducible} reducible to a narrower one.\n")
    else:
        out.write("\nEvery granted permission was used, and none was broader than its calls needed.\n")
    return unused + reducible


def load(manifest: Path, directory: Path | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    loaded: dict[str, Any] = yaml.safe_load(manifest.read_text())
    demo = yaml.safe_load(directory.read_text()) if directory and directory.exists() else None
    return loaded, demo


def command(manifest: Path, directory: Path, logs: list[Path], strict: bool) -> int:
    """`zt permissions-report`: 0, or 1 (--strict) when a grant is unused or reducible; 2 when there is
    nothing to read."""
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
    flagged = render(report(registrations, demo, logs), sys.stdout)
    return 1 if flagged and strict else 0
