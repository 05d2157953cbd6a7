# The web's session sealing key (AES-256, sealing sessions and token caches in Redis): generated at
# apply time without ever being written to the Terraform state or plan (an ephemeral value, stored
# through a write-only argument), kept in Key Vault, read by the web's identity alone.

# region quote: key-vault
resource "azurerm_key_vault" "main" {
  name                       = "kv-zt-${local.token}"
  resource_group_name        = azurerm_resource_group.main.name
  location                   = azurerm_resource_group.main.location
  tenant_id                  = local.tenant_id
  sku_name                   = "standard"
  rbac_authorization_enabled = true
  purge_protection_enabled   = true
  soft_delete_retention_days = 90
  # As the registry: the operator's addresses only (to write the key), the apps through the
  # private endpoint.
  public_network_access_enabled = length(local.operator_ip_ranges) > 0
  tags                          = local.tags

  network_acls {
    default_action = "Deny"
    bypass         = "None"
    ip_rules       = local.operator_ip_ranges
  }
}
# endregion

# Whoever runs this root writes the key, and nothing else reads or writes secrets but the web.
resource "azurerm_role_assignment" "operator_secrets" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

ephemeral "random_password" "session_key" {
  length  = 64
  special = false
}

resource "azurerm_key_vault_secret" "session_key" {
  # The file name the web reads (Sealer.from_key_file): Container Apps mounts the secret under it.
  name         = "session-key"
  key_vault_id = azurerm_key_vault.main.id
  content_type = "application/octet-stream;base64"
  # base64 of 32 bytes: what the web's key file holds.
  value_wo         = base64sha256(ephemeral.random_password.session_key.result)
  value_wo_version = var.session_key_version

  depends_on = [azurerm_role_assignment.operator_secrets]
}

# Scoped to the one secret, not the vault.
resource "azurerm_role_assignment" "web_session_key" {
  scope                = azurerm_key_vault_secret.session_key.resource_versionless_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.workload["web"].principal_id
  principal_type       = "ServicePrincipal"
}
