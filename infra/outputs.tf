# Names, ids and URLs only: azd stores these in .azure/<env>/.env, and the admin root reads them.
# Nothing here is a secret, so nothing is marked sensitive.

output "AZURE_RESOURCE_GROUP" {
  value = azurerm_resource_group.main.name
}

output "AZURE_TENANT_ID" {
  value = local.tenant_id
}

output "AZURE_CONTAINER_REGISTRY_ENDPOINT" {
  value = azurerm_container_registry.main.login_server
}

output "AZURE_CONTAINER_ENVIRONMENT_NAME" {
  value = azurerm_container_app_environment.main.name
}

output "WEB_URL" {
  value = local.web_origin
}

output "DOWNSTREAM_API_APP_NAME" {
  value = azurerm_container_app.service["downstream-api"].name
}

output "MIGRATION_JOB_NAME" {
  value = azurerm_container_app_job.migrate.name
}

# Application (client) ids by manifest name: the admin root grants consent and assigns roles to these.
output "CLIENT_IDS" {
  value = local.client_ids
}

output "MANAGED_IDENTITY_CLIENT_IDS" {
  value = local.mi
}
