# Azure Cache for Redis for the web's sessions and sealed token caches: Microsoft Entra
# authentication only (the web's managed identity's token is the password, no access key exists to
# leak), TLS only, reachable only through its private endpoint.

resource "azurerm_redis_cache" "sessions" {
  name                = "redis-zt-${local.token}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  sku_name            = var.redis_sku
  family              = var.redis_sku == "Premium" ? "P" : "C"
  capacity            = var.redis_capacity
  redis_version       = "6"

  non_ssl_port_enabled               = false
  minimum_tls_version                = "1.2"
  public_network_access_enabled      = false
  access_keys_authentication_enabled = false
  tags                               = local.tags

  redis_configuration {
    active_directory_authentication_enabled = true
  }
}

# The web alone may use the cache; its user name is its object id (WEB_SESSION_STORE's user).
resource "azurerm_redis_cache_access_policy_assignment" "web" {
  name               = "web"
  redis_cache_id     = azurerm_redis_cache.sessions.id
  access_policy_name = "Data Contributor"
  object_id          = azurerm_user_assigned_identity.workload["web"].principal_id
  object_id_alias    = azurerm_user_assigned_identity.workload["web"].principal_id
}
