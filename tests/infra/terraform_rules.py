"""The Zero Trust rules of infra/, checked on the parsed Terraform (python-hcl2), offline.

`problems(root)` lists every broken rule of the Terraform under `root`, one line each; the tests run
it on infra/ (no problem expected) and on copies deliberately weakened (exactly that problem expected).
Values are read as written: a literal, a variable's default, a local, or a for_each instance's
`each.key`/`each.value`; what cannot be read statically counts as a problem, never as a pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import yaml

Problems = list[str]
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
SECRET_TYPES = re.compile(r"_password$|_certificate$|^azuread_.*_secret$")
SECRET_KEYS = {"client_secret", "admin_password", "administrator_password", "administrator_password_wo", "password"}
SECRET_OUTPUT = re.compile(
    r"connection_string|primary_key|secondary_key|access_key|password|secret|shared_key|instrumentation_key|token",
    re.I,
)
UNKNOWN = object()


def _clean(value: Any) -> Any:
    """python-hcl2 8 keeps string quotes and marks blocks; give plain values."""
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items() if k not in ("__is_block__", "__comments__")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@dataclass
class Config:
    root: Path
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # "type.name" -> body
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path) -> Config:
        config = cls(root)
        for path in sorted(root.glob("*.tf")):
            with path.open() as f:
                parsed = _clean(hcl2.load(f))
            for block in parsed.get("resource", []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        config.resources[f"{rtype}.{name}"] = body
            for block in parsed.get("output", []):
                config.outputs.update(block)
            for block in parsed.get("variable", []):
                config.variables.update(block)
            for block in parsed.get("locals", []):
                config.locals.update(block)
        return config

    def of_type(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if k.split(".")[0] == rtype}

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load((self.root / "registrations.yaml").read_text())
        return data

    def value(self, raw: Any, each: tuple[str, Any] | None = None) -> Any:
        """A literal as is; `${var.x}`, `${local.x}`, `${each.key}`, `${each.value.a.b}` looked up; else UNKNOWN."""
        if not isinstance(raw, str):
            return raw
        match = re.fullmatch(r"\$\{(var|local|each)\.([\w.-]+)\}", raw)
        if not match:
            return UNKNOWN if raw.startswith("${") else raw
        kind, path = match.groups()
        parts = path.split(".")
        if kind == "var":
            found = self.variables.get(parts[0], {}).get("default", UNKNOWN)
            return self.value(found)
        if kind == "local":
            found = self.locals.get(parts[0], UNKNOWN)
        elif each is None:
            return UNKNOWN
        elif parts == ["key"]:
            return each[0]
        else:
            found = each[1]
        for part in parts[1:]:
            found = found.get(part, UNKNOWN) if isinstance(found, dict) else UNKNOWN
        return self.value(found, each)

    def instances(self, body: dict[str, Any]) -> list[tuple[str, Any] | None]:
        """(each.key, each.value) per instance of a for_each resource; [None] for a single one."""
        if "for_each" not in body:
            return [None]
        items = self.value(body["for_each"])
        return list(items.items()) if isinstance(items, dict) else [("?", UNKNOWN)]


def _block(body: dict[str, Any], name: str) -> dict[str, Any]:
    blocks = body.get(name) or [{}]
    return blocks[0] if isinstance(blocks, list) else blocks


def _walk_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _walk_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _walk_keys(v)}
    return set()


def no_secret_resources(c: Config) -> Problems:
    found = [
        f"{r}: a password, secret or certificate resource" for r in c.resources if SECRET_TYPES.search(r.split(".")[0])
    ]
    for name, body in c.resources.items():
        for key in sorted(_walk_keys(body) & SECRET_KEYS):
            found.append(f"{name}: sets {key}")
        if name.startswith("azurerm_key_vault_secret.") and "value" in body:
            found.append(f"{name}: value lands in the state; use value_wo")
    return found


def postgres_entra_only(c: Config) -> Problems:
    found = []
    for name, body in c.of_type("azurerm_postgresql_flexible_server").items():
        auth = _block(body, "authentication")
        if c.value(auth.get("password_auth_enabled")) is not False:
            found.append(f"{name}: password authentication must be off")
        if c.value(auth.get("active_directory_auth_enabled")) is not True:
            found.append(f"{name}: Entra authentication must be on")
        if "administrator_login" in body:
            found.append(f"{name}: an administrator login (password user) exists")
    if (
        c.of_type("azurerm_postgresql_flexible_server")
        and c.locals.get("postgres_settings", {}).get("require_secure_transport") != "on"
    ):
        found.append("postgres_settings: require_secure_transport must be on")
    return found


def private_network(c: Config) -> Problems:
    found = []
    for rtype in ("azurerm_postgresql_flexible_server", "azurerm_redis_cache"):
        for name, body in c.of_type(rtype).items():
            if c.value(body.get("public_network_access_enabled")) is not False:
                found.append(f"{name}: public network access must be off")
    # Key Vault and the registry may open to the operator's listed addresses, behind a deny-all firewall.
    for rtype, acl in (("azurerm_key_vault", "network_acls"), ("azurerm_container_registry", "network_rule_set")):
        for name, body in c.of_type(rtype).items():
            closed = c.value(body.get("public_network_access_enabled")) is False
            if not closed and c.value(_block(body, acl).get("default_action")) != "Deny":
                found.append(f"{name}: public network access must be off, or the firewall must deny by default")
    return found


def redis_entra_tls(c: Config) -> Problems:
    found = []
    for name, body in c.of_type("azurerm_redis_cache").items():
        if c.value(body.get("access_keys_authentication_enabled")) is not False:
            found.append(f"{name}: access keys must be off")
        if c.value(_block(body, "redis_configuration").get("active_directory_authentication_enabled")) is not True:
            found.append(f"{name}: Entra authentication must be on")
        if c.value(body.get("non_ssl_port_enabled", False)) is not False or body.get("minimum_tls_version") != "1.2":
            found.append(f"{name}: TLS 1.2 only (non-SSL port off)")
    for name, body in c.of_type("azurerm_redis_cache_access_policy_assignment").items():
        if 'workload["web"]' not in str(body.get("object_id")):
            found.append(f"{name}: only the web's identity may use the cache")
    return found


def key_vault_rbac(c: Config) -> Problems:
    found = []
    for name, body in c.of_type("azurerm_key_vault").items():
        if c.value(body.get("rbac_authorization_enabled", body.get("enable_rbac_authorization"))) is not True:
            found.append(f"{name}: RBAC authorization must be on")
        if c.value(body.get("purge_protection_enabled")) is not True:
            found.append(f"{name}: purge protection must be on")
        if "access_policy" in body:
            found.append(f"{name}: access policies bypass RBAC")
    return found


def container_apps(c: Config) -> Problems:
    """HTTPS only, the web alone external, at least two replicas with an http scale rule."""
    found = []
    for name, body in c.of_type("azurerm_container_app").items():
        for each in c.instances(body):
            label = f"{name}[{each[0]}]" if each else name
            ingress, template = _block(body, "ingress"), _block(body, "template")
            if c.value(ingress.get("allow_insecure_connections"), each) is not False:
                found.append(f"{label}: ingress must refuse plain http (allow_insecure_connections = false)")
            if c.value(ingress.get("external_enabled", False), each) is not (each is not None and each[0] == "web"):
                found.append(f"{label}: only the web may be reachable from outside the environment")
            replicas = c.value(template.get("min_replicas"), each)
            if not isinstance(replicas, int) or replicas < 2:
                found.append(
                    f"{label}: min_replicas must be at least 2 (is {replicas if replicas is not UNKNOWN else '?'})"
                )
            if "http_scale_rule" not in template:
                found.append(f"{label}: needs an http scale rule")
    return found


IDENTITY_REF = re.compile(r'^\$\{azurerm_user_assigned_identity\.workload\[(each\.key|"[\w-]+")\]\.id\}$')


def identities_not_shared(c: Config) -> Problems:
    """Each container app and job runs as its own user-assigned identity, pulls with it, shares it with none."""
    found, users = [], {}
    for rtype in ("azurerm_container_app", "azurerm_container_app_job"):
        for name, body in c.of_type(rtype).items():
            for each in c.instances(body):
                label = f"{name}[{each[0]}]" if each else name
                identity = _block(body, "identity")
                ids = identity.get("identity_ids") or []
                refs = [IDENTITY_REF.match(str(i)) for i in ids] + [
                    IDENTITY_REF.match(str(_block(body, "registry").get("identity")))
                ]
                if identity.get("type") != "UserAssigned" or len(ids) != 1 or not all(refs):
                    found.append(f"{label}: needs exactly one user-assigned identity, also used to pull its image")
                    continue
                keys = {each[0] if m.group(1) == "each.key" and each else m.group(1).strip('"') for m in refs if m}
                for key in keys:
                    users.setdefault(key, set()).add(label)
                if len(keys) > 1:
                    found.append(f"{label}: runs as one identity and pulls as another")
    found += [f"identity {key} is shared by {', '.join(sorted(who))}" for key, who in users.items() if len(who) > 1]
    return found


def outputs_no_secrets(c: Config) -> Problems:
    found = []
    for name, body in c.outputs.items():
        if SECRET_OUTPUT.search(name) or SECRET_OUTPUT.search(str(body.get("value"))):
            found.append(f"output {name} exposes a secret")
        if body.get("sensitive") is True:
            found.append(f"output {name} is sensitive: outputs hold names, ids and URLs only")
    return found


def registrations(c: Config) -> Problems:
    """Every manifest app registered, each federated credential for the token exchange, no implicit grant."""
    found: Problems = []
    manifest = c.manifest()
    regs = c.of_type("azuread_application_registration")
    if [r.get("for_each") for r in regs.values()] != ["${local.apps}"] or c.locals.get("apps") != (
        "${local.manifest.applications}"
    ):
        found.append("app registrations must be one per manifest application (for_each = local.apps)")
    for app_name, app in manifest["applications"].items():
        for cred in app.get("federated_credentials", []):
            if cred.get("audiences") != [EXCHANGE_AUDIENCE]:
                found.append(f"{app_name}/{cred.get('name')}: audience must be {EXCHANGE_AUDIENCE} alone")
            if cred.get("managed_identity") not in manifest["managed_identities"]:
                found.append(f"{app_name}/{cred.get('name')}: names no managed identity of the manifest")
        grant = app.get("implicit_grant", {})
        if grant.get("access_tokens") or grant.get("id_tokens"):
            found.append(f"{app_name}: implicit grant must be off")
    for name, body in regs.items():
        for key in ("implicit_access_token_issuance_enabled", "implicit_id_token_issuance_enabled"):
            if not re.fullmatch(
                r"\$\{try\(each\.value\.implicit_grant\.\w+, false\)\}|false|False", str(body.get(key))
            ):
                found.append(f"{name}: {key} must be false (or the manifest's value, false by default)")
    for name, body in c.of_type("azuread_application_federated_identity_credential").items():
        if body.get("audiences") != "${each.value.audiences}" or body.get("issuer") != "${local.issuer}":
            found.append(f"{name}: audiences and issuer must come from the manifest and the tenant")
    if c.locals.get("issuer") != "https://login.microsoftonline.com/${local.tenant_id}/v2.0":
        found.append("local.issuer must be the tenant's Entra v2.0 issuer")
    return found


RULES = (
    no_secret_resources,
    postgres_entra_only,
    private_network,
    redis_entra_tls,
    key_vault_rbac,
    container_apps,
    identities_not_shared,
    outputs_no_secrets,
    registrations,
)


def problems(root: Path) -> Problems:
    config = Config.load(root)
    return [p for rule in RULES for p in rule(config)]
