"""Deliberately weakening a rule of infra/ is caught: each case edits a copy and expects exactly that problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.infra.terraform_rules import problems

pytestmark = pytest.mark.guidance("secure-devops-platform-environment-zero-trust")

INFRA = Path(__file__).resolve().parents[2] / "infra"

SECRET_RESOURCE = """
resource "azuread_application_password" "web" {
  application_id = azuread_application_registration.app["web"].id
}
"""
SECRET_OUTPUT = """
output "redis_key" {
  value     = azurerm_redis_cache.sessions.primary_access_key
  sensitive = true
}
"""

# (file, text in it, replacement or None to append, the problem expected)
CASES = {
    "database password auth on": (
        "postgres.tf",
        "password_auth_enabled         = false",
        "password_auth_enabled         = true",
        ["azurerm_postgresql_flexible_server.main: password authentication must be off"],
    ),
    "database Entra auth off": (
        "postgres.tf",
        "active_directory_auth_enabled = true",
        "active_directory_auth_enabled = false",
        ["azurerm_postgresql_flexible_server.main: Entra authentication must be on"],
    ),
    "database without TLS": (
        "postgres.tf",
        'require_secure_transport     = "on"',
        'require_secure_transport     = "off"',
        ["postgres_settings: require_secure_transport must be on"],
    ),
    "a client secret": (
        "registrations.tf",
        None,
        SECRET_RESOURCE,
        ["azuread_application_password.web: a password, secret or certificate resource"],
    ),
    "redis access keys on": (
        "redis.tf",
        "access_keys_authentication_enabled = false",
        "access_keys_authentication_enabled = true",
        ["azurerm_redis_cache.sessions: access keys must be off"],
    ),
    "redis public": (
        "redis.tf",
        "public_network_access_enabled      = false",
        "public_network_access_enabled      = true",
        ["azurerm_redis_cache.sessions: public network access must be off"],
    ),
    "database public": (
        "postgres.tf",
        "public_network_access_enabled = false",
        "public_network_access_enabled = true",
        ["azurerm_postgresql_flexible_server.main: public network access must be off"],
    ),
    "key vault open to all": (
        "keyvault.tf",
        'default_action = "Deny"',
        'default_action = "Allow"',
        [
            "azurerm_key_vault.main: public network access must be off, or the firewall must deny by default",
        ],
    ),
    "key vault access policies": (
        "keyvault.tf",
        "rbac_authorization_enabled = true",
        "rbac_authorization_enabled = false",
        ["azurerm_key_vault.main: RBAC authorization must be on"],
    ),
    "a shared identity": (
        "jobs.tf",
        'workload["daemon"].id',
        'workload["web"].id',
        ["identity web is shared by azurerm_container_app.service[web], azurerm_container_app_job.daemon"],
    ),
    "one replica": (
        "variables.tf",
        "default     = 2",
        "default     = 1",
        [
            f"azurerm_container_app.service[{name}]: min_replicas must be at least 2 (is 1)"
            for name in ("web", "api", "downstream-api")
        ],
    ),
    "plain http": (
        "containerapps.tf",
        "allow_insecure_connections = false",
        "allow_insecure_connections = true",
        [
            f"azurerm_container_app.service[{name}]: ingress must refuse plain http "
            "(allow_insecure_connections = false)"
            for name in ("web", "api", "downstream-api")
        ],
    ),
    "a secret output": (
        "outputs.tf",
        None,
        SECRET_OUTPUT,
        [
            "output redis_key exposes a secret",
            "output redis_key is sensitive: outputs hold names, ids and URLs only",
        ],
    ),
    "implicit grant on": (
        "registrations.tf",
        "implicit_id_token_issuance_enabled     = try(each.value.implicit_grant.id_tokens, false)",
        "implicit_id_token_issuance_enabled     = true",
        [
            "azuread_application_registration.app: implicit_id_token_issuance_enabled must be false "
            "(or the manifest's value, false by default)"
        ],
    ),
    "a federated credential for another audience": (
        "registrations.yaml",
        '{name: web-managed-identity, managed_identity: web, audiences: ["api://AzureADTokenExchange"]}',
        '{name: web-managed-identity, managed_identity: web, audiences: ["api://something-else"]}',
        ["web/web-managed-identity: audience must be api://AzureADTokenExchange alone"],
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_weakened_copy_is_caught(case: str, tmp_path: Path) -> None:
    name, old, new, expected = CASES[case]
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy, ignore=shutil.ignore_patterns(".terraform*", "admin"))
    target = copy / name
    text = target.read_text()
    if old is None:
        target.write_text(text + new)
    else:
        assert text.count(old) >= 1, f"{name} no longer holds {old!r}: update this case"
        target.write_text(text.replace(old, new))
    assert problems(copy) == expected
