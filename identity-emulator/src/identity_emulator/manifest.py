"""Loading the directory: app registrations from the infra manifest plus the demo tenants and people.

The manifest is the same file Terraform reads; the demo directory is emulator-only. Both are
validated when loaded so that a typo fails at start-up with a message, not at the first sign-in.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml

from .directory import (
    DIRECTORY_ROLES,
    Application,
    AppRole,
    Directory,
    FederatedCredential,
    ManagedIdentity,
    Scope,
    Tenant,
    User,
)


class DirectoryError(ValueError):
    """The manifest or demo directory is inconsistent."""


def _require(mapping: dict[str, Any], key: str, where: str) -> Any:
    if key not in mapping:
        raise DirectoryError(f"{where}: missing '{key}'")
    return mapping[key]


def _uuid(value: Any, where: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise DirectoryError(f"{where}: {value!r} is not a GUID") from None


# The web app's origin in a local run; "{web_origin}" in a registration's URLs stands for it.
WEB_ORIGIN = "http://localhost:8000"
# zt: app-registration - the role an administrator assigns people to where an app requires assignment.
BASELINE_ROLE = "User"


def load_directory(
    manifest_path: Path,
    directory_path: Path,
    multi_tenant_apps: frozenset[str] = frozenset(),
    web_origin: str = WEB_ORIGIN,
) -> Directory:
    """`multi_tenant_apps`: registrations whose sign-in audience is switched to AzureADMultipleOrgs
    (zt run --tenants), as a Terraform variable would switch them in Entra. `web_origin`: what
    "{web_origin}" in the registrations' terms and privacy URLs stands for."""
    # region quote: emulator-reads-manifest
    manifest = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    demo = yaml.safe_load(directory_path.read_text(encoding="utf-8"))

    mis = {
        name: ManagedIdentity(name, _uuid(spec["client_id"], f"mi {name}"), _uuid(spec["object_id"], f"mi {name}"))
        for name, spec in (manifest.get("managed_identities") or {}).items()
    }
    # Microsoft's APIs (Graph) are resources in every tenant: loaded like registrations, never clients.
    raw_apps: dict[str, dict[str, Any]] = {**manifest["applications"], **(manifest.get("microsoft_apis") or {})}
    unknown = multi_tenant_apps - raw_apps.keys()
    if unknown:
        raise DirectoryError(f"multi-tenant apps: unknown application(s) {sorted(unknown)}")
    ids = {name: _uuid(_require(spec, "application_id", name), name) for name, spec in raw_apps.items()}
    # endregion

    def app_id(name: str, where: str) -> str:
        if name not in ids:
            raise DirectoryError(f"{where}: unknown application '{name}'")
        return ids[name]

    apps: dict[str, Application] = {}
    for name, spec in raw_apps.items():
        aid = ids[name]
        uri = spec.get("identifier_uri")
        scopes = {
            s["value"]: Scope(s["value"], s["id"], bool(s.get("admin_consent_required")), s.get("description", ""))
            for s in spec.get("scopes") or []
        }
        roles = {
            r["value"]: AppRole(r["value"], r["id"], tuple(r.get("allowed_member_types", [])), r.get("description", ""))
            for r in spec.get("app_roles") or []
        }
        feds = []
        for f in spec.get("federated_credentials") or []:
            if f["managed_identity"] not in mis:
                raise DirectoryError(f"{name}: federated credential names unknown identity {f['managed_identity']}")
            feds.append(FederatedCredential(f["name"], f["managed_identity"], tuple(f.get("audiences", []))))
        info = {k: str(v).replace("{web_origin}", web_origin) for k, v in (spec.get("info") or {}).items()}
        apps[aid] = Application(
            name=name,
            display_name=spec.get("display_name", name),
            application_id=aid,
            client_type=spec.get("client_type", "confidential"),
            sign_in_audience="AzureADMultipleOrgs"
            if name in multi_tenant_apps
            else spec.get("sign_in_audience", "AzureADMyOrg"),
            identifier_uri=uri.replace("{application_id}", aid) if uri else None,
            redirect_uris=tuple(spec.get("redirect_uris") or ()),
            post_logout_redirect_uris=tuple(spec.get("post_logout_redirect_uris") or ()),
            scopes=scopes,
            app_roles=roles,
            pre_authorized={
                app_id(p["application"], name): frozenset(p["scopes"])
                for p in spec.get("pre_authorized_applications") or []
            },
            known_client_ids=frozenset(app_id(k, name) for k in spec.get("known_client_applications") or []),
            federated_credentials=tuple(feds),
            certificate_credential_names=tuple(c["name"] for c in spec.get("certificate_credentials") or []),
            required_scopes={
                app_id(res, name): frozenset((need or {}).get("scopes", []))
                for res, need in (spec.get("required_resource_access") or {}).items()
            },
            required_roles={
                app_id(res, name): frozenset((need or {}).get("app_roles", []))
                for res, need in (spec.get("required_resource_access") or {}).items()
            },
            optional_claims={k: tuple(v) for k, v in (spec.get("optional_claims") or {}).items()},
            group_membership_claims=spec.get("group_membership_claims", "None"),
            app_role_assignment_required=bool(spec.get("app_role_assignment_required", False)),
            allow_public_client_flows=bool(spec.get("allow_public_client_flows", False)),
            implicit_grant=dict(spec.get("implicit_grant") or {}),
            owners=tuple(spec.get("owners") or ()),
            terms_of_service_url=info.get("terms_of_service_url"),
            privacy_statement_url=info.get("privacy_statement_url"),
        )
    by_name = {a.name: a for a in apps.values()}
    for app in apps.values():
        for client_id, wanted in app.pre_authorized.items():
            unknown = wanted - app.scopes.keys()
            if unknown:
                raise DirectoryError(f"{app.name}: pre-authorizes {by_name_of(apps, client_id)} for unknown {unknown}")

    tenants: dict[str, Tenant] = {}
    for tname, tspec in demo["tenants"].items():
        tid = _uuid(tspec["tenant_id"], tname)
        group_ids = {g: _uuid(gs["object_id"], f"{tname} group {g}") for g, gs in (tspec.get("groups") or {}).items()}
        group_names = {group_ids[g]: gs.get("display_name", g) for g, gs in (tspec.get("groups") or {}).items()}
        extra: dict[str, list[str]] = {}
        gen = tspec.get("generated_groups")
        if gen:
            for i in range(int(gen["count"])):
                gid = str(uuid.uuid5(uuid.UUID(tid), f"group:{gen['prefix']}-{i}"))
                group_names[gid] = f"{gen['prefix']}-{i:03d}"
                for member in gen.get("members", []):
                    extra.setdefault(member.lower(), []).append(gid)
        users: dict[str, User] = {}
        tenant_ids = {name: spec["tenant_id"] for name, spec in demo["tenants"].items()}
        for u in tspec.get("users") or []:
            upn = u["upn"].lower()
            user_roles: list[tuple[str, str]] = []
            assigned = [{"application": a, "role": BASELINE_ROLE} for a in u.get("assigned") or []]
            for r in [*assigned, *(u.get("app_roles") or [])]:
                if r["application"] not in by_name:
                    raise DirectoryError(f"{upn}: assigned to unknown application {r['application']!r}")
                res = by_name[r["application"]]
                if r["role"] not in res.app_roles or "User" not in res.app_roles[r["role"]].allowed_member_types:
                    raise DirectoryError(f"{upn}: app role {r['role']} not defined for users on {res.name}")
                user_roles.append((res.application_id, r["role"]))
            unknown_roles = set(u.get("directory_roles") or []) - DIRECTORY_ROLES.keys()
            if unknown_roles:
                raise DirectoryError(f"{upn}: unknown directory role(s) {sorted(unknown_roles)}")
            users[upn] = User(
                upn=upn,
                display_name=u["display_name"],
                object_id=_uuid(u["object_id"], upn),
                tenant_id=tid,
                groups=tuple(group_ids[g] for g in u.get("groups", [])) + tuple(extra.get(upn, [])),
                country=u.get("country"),
                app_roles=tuple(user_roles),
                directory_roles=frozenset(DIRECTORY_ROLES[r] for r in u.get("directory_roles") or []),
                home_tenant_id=_home_tenant(u, tname, tenant_ids),
            )
        admin_roles = {}
        admin_scopes = {}
        for c in tspec.get("admin_consents") or []:
            client, res = by_name[c["client"]], by_name[c["resource"]]
            if c.get("app_roles"):
                admin_roles[(client.application_id, res.application_id)] = frozenset(c["app_roles"])
            if c.get("scopes"):
                bad = set(c["scopes"]) - res.scopes.keys()
                if bad:
                    raise DirectoryError(f"{tname}: admin consent names unknown scopes {sorted(bad)} of {res.name}")
                admin_scopes[(client.application_id, res.application_id)] = frozenset(c["scopes"])
        tenants[tid] = Tenant(
            tname,
            tid,
            tspec.get("display_name", tname),
            tspec["domain"].lower(),
            users,
            group_names,
            admin_roles,
            admin_scopes,
        )
    home = next((t.tenant_id for t in tenants.values() if t.name == demo["home_tenant"]), None)
    if home is None:
        raise DirectoryError(f"home_tenant {demo['home_tenant']!r} is not a tenant")
    return Directory(apps, by_name, mis, tenants, home)


def _home_tenant(spec: dict[str, Any], tenant: str, tenant_ids: dict[str, Any]) -> str | None:
    """A guest's home tenant (`guest_of`): another tenant of the directory; None for a member."""
    home = spec.get("guest_of")
    if home is None:
        return None
    if home == tenant or home not in tenant_ids:
        raise DirectoryError(f"{spec['upn']}: guest_of must name another tenant, not {home!r}")
    return _uuid(tenant_ids[home], f"{home} tenant_id")


def by_name_of(apps: dict[str, Application], application_id: str) -> str:
    app = apps.get(application_id)
    return app.name if app else application_id
