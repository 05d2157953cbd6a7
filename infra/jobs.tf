# The two workloads that are not services: the daemon on a schedule, and the schema migration that
# the deployment runs once per release. Each has its own identity, as the services do.

resource "azurerm_container_app_job" "daemon" {
  name                         = "${local.prefix}-daemon"
  resource_group_name          = azurerm_resource_group.main.name
  location                     = azurerm_resource_group.main.location
  container_app_environment_id = azurerm_container_app_environment.main.id
  workload_profile_name        = "Consumption"
  replica_timeout_in_seconds   = 300
  replica_retry_limit          = 1
  # azd deploys the daemon's image here (azure.yaml's `daemon` service: Container Apps jobs are a
  # `containerapp` host since azd's March 2026 releases, Azure/azure-dev#7001).
  tags = merge(local.tags, { "azd-service-name" = "daemon" })

  schedule_trigger_config {
    cron_expression = var.daemon_schedule
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.workload["daemon"].id]
  }

  registry {
    server   = azurerm_container_registry.main.login_server
    identity = azurerm_user_assigned_identity.workload["daemon"].id
  }

  template {
    container {
      name  = "daemon"
      image = var.placeholder_image
      # The devtools image holds the daemon (zt daemon); it reads its settings below, not stack.json.
      command = ["python", "-m", "devtools.cli", "daemon"]
      cpu     = 0.25
      memory  = "0.5Gi"

      # App-only: its registration's client id, the api it calls, the identity that proves it.
      dynamic "env" {
        for_each = {
          DAEMON_AUTHORITY                      = local.authority
          DAEMON_CLIENT_ID                      = local.client_ids["daemon"]
          DAEMON_API_URL                        = local.api_origin
          DAEMON_API_APP_ID_URI                 = local.api_id_uri
          DAEMON_MANAGED_IDENTITY_CLIENT_ID     = local.mi["daemon"]
          APPLICATIONINSIGHTS_CONNECTION_STRING = azurerm_application_insights.main.connection_string
        }
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [template[0].container[0].image]
  }

  depends_on = [azurerm_role_assignment.acr_pull]
}

# Run by the deployment (scripts/migrate.sh) with downstream-api's image, as database-admin, the
# server's Entra administrator: it creates the database and downstream-api's least-privilege role,
# then brings the schema up to date. downstream-api itself may only read and write rows.
resource "azurerm_container_app_job" "migrate" {
  name                         = "${local.prefix}-migrate"
  resource_group_name          = azurerm_resource_group.main.name
  location                     = azurerm_resource_group.main.location
  container_app_environment_id = azurerm_container_app_environment.main.id
  workload_profile_name        = "Consumption"
  replica_timeout_in_seconds   = 600
  replica_retry_limit          = 0
  tags                         = local.tags

  manual_trigger_config {
    parallelism              = 1
    replica_completion_count = 1
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.workload["database-admin"].id]
  }

  registry {
    server   = azurerm_container_registry.main.login_server
    identity = azurerm_user_assigned_identity.workload["database-admin"].id
  }

  template {
    container {
      name    = "migrate"
      image   = var.placeholder_image
      cpu     = 0.25
      memory  = "0.5Gi"
      command = ["python", "-c", file("${path.module}/scripts/db_bootstrap.py")]

      dynamic "env" {
        for_each = {
          DOWNSTREAM_ENVIRONMENT                = "production"
          DOWNSTREAM_AUTHORITY                  = local.authority
          DOWNSTREAM_INSTANCE_DISCOVERY         = "true"
          DOWNSTREAM_CLIENT_ID                  = local.client_ids["downstream-api"]
          DOWNSTREAM_ALLOWED_CLIENT_IDS         = local.client_ids["api"]
          DOWNSTREAM_PUBLIC_URL                 = local.downstream_origin
          DOWNSTREAM_MANAGED_IDENTITY_CLIENT_ID = local.mi["database-admin"]
          DOWNSTREAM_DATABASE_URL               = format(local.database_url, "database-admin")
          DOWNSTREAM_MIGRATE_ON_START           = "false"
          # For db_bootstrap.py: the role to create and the identity it is bound to.
          ZT_DB_APP_ROLE      = "downstream-api"
          ZT_DB_APP_OBJECT_ID = azurerm_user_assigned_identity.workload["downstream-api"].principal_id
        }
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }

  lifecycle {
    # scripts/migrate.sh sets the image azd just deployed for downstream-api.
    ignore_changes = [template[0].container[0].image]
  }

  depends_on = [
    azurerm_role_assignment.acr_pull,
    azurerm_postgresql_flexible_server_active_directory_administrator.database_admin,
  ]
}
