# Azure Database for PostgreSQL flexible server with Microsoft Entra authentication only (no role
# has a password), reachable only from inside the network, TLS required: what the local cluster
# (devtools.postgres) checks the same way, see docs/postgres.md.

resource "azurerm_postgresql_flexible_server" "main" {
  name                = "psql-zt-${local.token}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  version             = "16"
  sku_name            = var.postgres_sku
  storage_mb          = 32768
  # No public endpoint: the server lives in its delegated subnet, named through the private zone.
  delegated_subnet_id           = azurerm_subnet.postgres.id
  private_dns_zone_id           = azurerm_private_dns_zone.zone["postgres"].id
  public_network_access_enabled = false
  backup_retention_days         = 14
  geo_redundant_backup_enabled  = true
  tags                          = local.tags

  authentication {
    active_directory_auth_enabled = true
    password_auth_enabled         = false
    tenant_id                     = local.tenant_id
  }

  lifecycle {
    # Azure picks the zone when none is given; a later plan must not move the server.
    ignore_changes = [zone]
  }

  depends_on = [azurerm_private_dns_zone_virtual_network_link.zone]
}

# The migration identity administers the server; downstream-api's role is created by it after
# provisioning (infra/scripts/db_bootstrap.py) with row rights only.
resource "azurerm_postgresql_flexible_server_active_directory_administrator" "database_admin" {
  server_name         = azurerm_postgresql_flexible_server.main.name
  resource_group_name = azurerm_resource_group.main.name
  tenant_id           = local.tenant_id
  object_id           = azurerm_user_assigned_identity.workload["database-admin"].principal_id
  principal_name      = azurerm_user_assigned_identity.workload["database-admin"].name
  principal_type      = "ServicePrincipal"
}

locals {
  postgres_settings = {
    # A client without TLS is refused before any token is sent (as the local cluster's pg_hba does).
    require_secure_transport     = "on"
    ssl_min_protocol_version     = "TLSv1.2"
    log_connections              = "on"
    log_disconnections           = "on"
    "connection_throttle.enable" = "on"
  }
}

resource "azurerm_postgresql_flexible_server_configuration" "setting" {
  for_each = local.postgres_settings

  server_id = azurerm_postgresql_flexible_server.main.id
  name      = each.key
  value     = each.value
}
