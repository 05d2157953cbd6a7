# Logs and traces with Entra authentication only: no workspace key or instrumentation key works.

resource "azurerm_log_analytics_workspace" "main" {
  name                         = "log-${local.prefix}"
  resource_group_name          = azurerm_resource_group.main.name
  location                     = azurerm_resource_group.main.location
  sku                          = "PerGB2018"
  retention_in_days            = 30
  local_authentication_enabled = false
  tags                         = local.tags
}

resource "azurerm_application_insights" "main" {
  name                = "appi-${local.prefix}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  workspace_id        = azurerm_log_analytics_workspace.main.id
  application_type    = "web"
  # The connection string then only names the resource: telemetry must carry a managed identity's
  # token (zerotrust.tracing passes one), so the string handed to the apps grants nothing.
  local_authentication_enabled = false
  tags                         = local.tags
}

# The environment's logs reach the workspace through Azure Monitor (Entra), not the workspace's key.
resource "azurerm_monitor_diagnostic_setting" "environment" {
  name                       = "to-log-analytics"
  target_resource_id         = azurerm_container_app_environment.main.id
  log_analytics_workspace_id = azurerm_log_analytics_workspace.main.id

  enabled_log {
    category_group = "allLogs"
  }
}
