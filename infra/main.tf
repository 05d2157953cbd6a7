# The resource group and the names everything else derives from. The app registrations come from
# the same manifest the identity emulator reads, so what runs on a laptop is what Entra holds.
# zt: integrate-apps-microsoft-identity-platform

data "azurerm_client_config" "current" {}

# "deployer" in the manifest's owners: whoever runs this root.
data "azuread_client_config" "current" {}

locals {
  # region quote: manifest
  manifest      = yamldecode(file("${path.module}/registrations.yaml"))
  apps          = local.manifest.applications
  identities    = local.manifest.managed_identities
  microsoft_api = local.manifest.microsoft_apis
  # endregion

  tenant_id = data.azurerm_client_config.current.tenant_id
  authority = "https://login.microsoftonline.com/${local.tenant_id}"
  # What a managed identity's token says as its issuer when it is used as a federated credential.
  issuer = "https://login.microsoftonline.com/${local.tenant_id}/v2.0"

  # Short, unique per subscription and environment, for the globally named resources.
  token  = substr(sha256("${data.azurerm_client_config.current.subscription_id}/${var.environment_name}"), 0, 8)
  prefix = "zt-${var.environment_name}"

  operator_ip_ranges = compact([for r in split(",", var.operator_ip_ranges) : trimspace(r)])

  tags = {
    "azd-env-name" = var.environment_name
    "workload"     = "zero-trust-sample"
  }

  # Container app names: they make the host names, which are known before the apps exist (the
  # web's redirect URI and the api's downstream URL need them, and an app can't refer to itself).
  app_names = {
    web              = "${local.prefix}-web"
    "api"            = "${local.prefix}-api"
    "downstream-api" = "${local.prefix}-downstream"
  }
  domain            = azurerm_container_app_environment.main.default_domain
  web_origin        = "https://${local.app_names.web}.${local.domain}"
  api_origin        = "https://${local.app_names.api}.internal.${local.domain}"
  downstream_origin = "https://${local.app_names["downstream-api"]}.internal.${local.domain}"
  api_host          = "${local.app_names.api}.internal.${local.domain}"
  downstream_host   = "${local.app_names["downstream-api"]}.internal.${local.domain}"
}

resource "azurerm_resource_group" "main" {
  name     = "rg-${local.prefix}"
  location = var.location
  tags     = local.tags
}
