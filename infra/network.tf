# Private by default: the database, the cache, the vault and the registry answer on private addresses
# in this network; only the web's ingress is public.

resource "azurerm_virtual_network" "main" {
  name                = "vnet-${local.prefix}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  address_space       = [var.vnet_address_space]
  tags                = local.tags
}

# Container Apps (workload profiles) want a delegated subnet of /27 or more; /23 leaves room to scale.
resource "azurerm_subnet" "apps" {
  name                 = "snet-apps"
  resource_group_name  = azurerm_resource_group.main.name
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = [cidrsubnet(var.vnet_address_space, 7, 0)]

  delegation {
    name = "container-apps"
    service_delegation {
      name    = "Microsoft.App/environments"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

resource "azurerm_subnet" "endpoints" {
  name                              = "snet-endpoints"
  resource_group_name               = azurerm_resource_group.main.name
  virtual_network_name              = azurerm_virtual_network.main.name
  address_prefixes                  = [cidrsubnet(var.vnet_address_space, 11, 16)]
  private_endpoint_network_policies = "Enabled"
}

# The flexible server's own subnet (VNet integration): it has no public endpoint at all.
resource "azurerm_subnet" "postgres" {
  name                 = "snet-postgres"
  resource_group_name  = azurerm_resource_group.main.name
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = [cidrsubnet(var.vnet_address_space, 12, 48)]
  service_endpoints    = ["Microsoft.Storage"]

  delegation {
    name = "postgres"
    service_delegation {
      name    = "Microsoft.DBforPostgreSQL/flexibleServers"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

resource "azurerm_network_security_group" "main" {
  name                = "nsg-${local.prefix}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  tags                = local.tags
}

resource "azurerm_subnet_network_security_group_association" "subnet" {
  for_each = {
    apps      = azurerm_subnet.apps.id
    endpoints = azurerm_subnet.endpoints.id
    postgres  = azurerm_subnet.postgres.id
  }

  subnet_id                 = each.value
  network_security_group_id = azurerm_network_security_group.main.id
}

locals {
  private_zones = {
    redis    = "privatelink.redis.cache.windows.net"
    vault    = "privatelink.vaultcore.azure.net"
    registry = "privatelink.azurecr.io"
    # The flexible server's zone must end in .postgres.database.azure.com.
    postgres = "${local.prefix}.private.postgres.database.azure.com"
  }
}

resource "azurerm_private_dns_zone" "zone" {
  for_each = local.private_zones

  name                = each.value
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "zone" {
  for_each = local.private_zones

  name                  = "link-${each.key}"
  resource_group_name   = azurerm_resource_group.main.name
  private_dns_zone_name = azurerm_private_dns_zone.zone[each.key].name
  virtual_network_id    = azurerm_virtual_network.main.id
  registration_enabled  = false
  tags                  = local.tags
}

locals {
  # The services reached through a private endpoint, and the part of each the endpoint serves.
  private_endpoints = {
    redis    = { id = azurerm_redis_cache.sessions.id, subresource = "redisCache" }
    vault    = { id = azurerm_key_vault.main.id, subresource = "vault" }
    registry = { id = azurerm_container_registry.main.id, subresource = "registry" }
  }
}

resource "azurerm_private_endpoint" "service" {
  for_each = local.private_endpoints

  name                = "pe-${local.prefix}-${each.key}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  subnet_id           = azurerm_subnet.endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "psc-${each.key}"
    private_connection_resource_id = each.value.id
    subresource_names              = [each.value.subresource]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = each.key
    private_dns_zone_ids = [azurerm_private_dns_zone.zone[each.key].id]
  }
}
