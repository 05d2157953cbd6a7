# zt: identity-non-user-applications
# One user-assigned managed identity per workload in the manifest, never shared: each service proves
# only itself, and each gets only its own rights. The names are the PostgreSQL role names too.

resource "azurerm_user_assigned_identity" "workload" {
  for_each = local.identities

  name                = each.key
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  tags                = local.tags
}

locals {
  # Who pulls which image: the three services, the daemon job, and the migration job (downstream-api's
  # image, run as database-admin).
  pullers = toset(["web", "api", "downstream-api", "daemon", "database-admin"])
  # Who sends telemetry (Application Insights takes Entra-authenticated telemetry only).
  publishers = toset(["web", "api", "downstream-api", "daemon"])
}

resource "azurerm_role_assignment" "acr_pull" {
  for_each = local.pullers

  scope                = azurerm_container_registry.main.id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_user_assigned_identity.workload[each.key].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "telemetry" {
  for_each = local.publishers

  scope                = azurerm_application_insights.main.id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = azurerm_user_assigned_identity.workload[each.key].principal_id
  principal_type       = "ServicePrincipal"
}
