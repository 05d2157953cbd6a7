# zt: secure-devops-platform-environment-zero-trust
# Images are pushed by the operator (azd deploy, with AcrPush through their Entra sign-in) and pulled
# by each app's own identity (AcrPull): no admin user, no anonymous pull, no registry password.

resource "azurerm_container_registry" "main" {
  name                = "crzt${local.token}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  # Premium: private endpoints and a firewall.
  sku                     = "Premium"
  admin_enabled           = false
  anonymous_pull_enabled  = false
  data_endpoint_enabled   = true
  zone_redundancy_enabled = true
  # Reachable from outside the network only from the operator's listed addresses (and not at all
  # when there are none); the apps pull through the private endpoint.
  public_network_access_enabled = length(local.operator_ip_ranges) > 0
  network_rule_bypass_option    = "None"
  retention_policy_in_days      = 7
  tags                          = local.tags

  network_rule_set {
    default_action = "Deny"

    dynamic "ip_rule" {
      for_each = local.operator_ip_ranges
      content {
        action   = "Allow"
        ip_range = ip_rule.value
      }
    }
  }
}

resource "azurerm_role_assignment" "operator_push" {
  scope                = azurerm_container_registry.main.id
  role_definition_name = "AcrPush"
  principal_id         = data.azurerm_client_config.current.object_id
}
