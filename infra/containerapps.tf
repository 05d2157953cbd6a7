# zt: secure-devops-platform-environment-zero-trust
# The three services in a VNet-integrated Container Apps environment: HTTPS only at the ingress, only
# the web reachable from the internet, at least two replicas each, each running as its own identity
# with the settings its code reads (WEB_*, API_*, DOWNSTREAM_*; see each service's settings.py).

resource "azurerm_container_app_environment" "main" {
  name                     = "cae-${local.prefix}"
  resource_group_name      = azurerm_resource_group.main.name
  location                 = azurerm_resource_group.main.location
  infrastructure_subnet_id = azurerm_subnet.apps.id
  # Logs go to Azure Monitor (diagnostic setting in monitoring.tf), never with the workspace's key.
  logs_destination = "azure-monitor"
  # Traffic between the apps inside the environment is encrypted too.
  mutual_tls_enabled = true
  tags               = local.tags

  workload_profile {
    name                  = "Consumption"
    workload_profile_type = "Consumption"
  }
}

locals {
  mi = { for name, identity in azurerm_user_assigned_identity.workload : name => identity.client_id }

  # Settings every tier shares (zerotrust.settings.ServiceSettings), by env prefix.
  common = { for prefix, name in { WEB_ = "web", API_ = "api", DOWNSTREAM_ = "downstream-api" } : name => {
    "${prefix}ENVIRONMENT"                = "production"
    "${prefix}AUTHORITY"                  = local.authority
    "${prefix}INSTANCE_DISCOVERY"         = "true"
    "${prefix}CLIENT_ID"                  = local.client_ids[name]
    "${prefix}MANAGED_IDENTITY_CLIENT_ID" = local.mi[name]
    "${prefix}HOST"                       = "0.0.0.0"
    # The ingress's proxies sit in the apps subnet: believe their X-Forwarded-For, no one else's.
    "${prefix}RATE_TRUSTED_PROXIES" = azurerm_subnet.apps.address_prefixes[0]
    # Names the Application Insights resource; grants nothing (local authentication is off).
    APPLICATIONINSIGHTS_CONNECTION_STRING = azurerm_application_insights.main.connection_string
  } }

  # The api's app-only calls use their own registration where the manifest has one.
  app_only_client_id = try(local.client_ids["api-app-only"], local.client_ids["api"])
  api_id_uri         = "api://${local.client_ids["api"]}"
  database_url       = "postgresql+psycopg://%s@${azurerm_postgresql_flexible_server.main.fqdn}/records?sslmode=verify-full&sslrootcert=system"

  services = {
    web = {
      port     = 8000
      external = true
      host     = "${local.app_names.web}.${local.domain}"
      env = {
        WEB_PORT                     = "8000"
        WEB_ALLOWED_HOSTS            = "${local.app_names.web}.${local.domain}"
        WEB_IDP_ORIGIN               = "https://login.microsoftonline.com"
        WEB_REDIRECT_URI             = "${local.web_origin}/auth/callback"
        WEB_POST_LOGOUT_REDIRECT_URI = "${local.web_origin}/"
        WEB_API_URL                  = local.api_origin
        WEB_API_SCOPES               = "${local.api_id_uri}/Tasks.Read"
        WEB_API_WRITE_SCOPES         = "${local.api_id_uri}/Tasks.ReadWrite"
        WEB_API_ORG_SCOPES           = "${local.api_id_uri}/Tasks.Read.All"
        WEB_ADMIN_CONSENT_URL        = "https://entra.microsoft.com/"
        # The user name is the identity's object id; the password, a token for it (never a key).
        WEB_SESSION_STORE = "rediss://${azurerm_user_assigned_identity.workload["web"].principal_id}@${azurerm_redis_cache.sessions.hostname}:6380/0"
        # Where the session key is mounted from Key Vault (session-key, read only).
        WEB_STATE_DIR = "/mnt/secrets"
      }
    }
    api = {
      port     = 8001
      external = false
      host     = local.api_host
      env = {
        API_PORT = "8001"
        # The ingress serves HTTPS (and only HTTPS) and is the only way in; the container plain HTTP.
        API_TLS_AT_INGRESS        = "true"
        API_PUBLIC_URL            = local.api_origin
        API_ALLOWED_HOSTS         = local.api_host
        API_ALLOWED_CLIENT_IDS    = join(",", [local.client_ids["web"], local.client_ids["cli"]])
        API_APP_ONLY_CLIENT_IDS   = join(",", [local.client_ids["daemon"], local.client_ids["provisioner"]])
        API_APP_ONLY_CLIENT_ID    = local.app_only_client_id
        API_DOWNSTREAM_URL        = local.downstream_origin
        API_DOWNSTREAM_APP_ID_URI = "api://${local.client_ids["downstream-api"]}"
      }
    }
    "downstream-api" = {
      port     = 8002
      external = false
      host     = local.downstream_host
      env = {
        DOWNSTREAM_PORT                = "8002"
        DOWNSTREAM_TLS_AT_INGRESS      = "true"
        DOWNSTREAM_PUBLIC_URL          = local.downstream_origin
        DOWNSTREAM_ALLOWED_HOSTS       = local.downstream_host
        DOWNSTREAM_ALLOWED_CLIENT_IDS  = local.client_ids["api"]
        DOWNSTREAM_APP_ONLY_CLIENT_IDS = local.app_only_client_id
        DOWNSTREAM_DATABASE_URL        = format(local.database_url, "downstream-api")
        # The schema is migrated beforehand, as database-admin (the migration job below).
        DOWNSTREAM_MIGRATE_ON_START = "false"
      }
    }
  }
}

resource "azurerm_container_app" "service" {
  for_each = local.services

  name                         = local.app_names[each.key]
  resource_group_name          = azurerm_resource_group.main.name
  container_app_environment_id = azurerm_container_app_environment.main.id
  revision_mode                = "Single"
  workload_profile_name        = "Consumption"
  # azd finds the app it deploys to by this tag.
  tags = merge(local.tags, { "azd-service-name" = each.key })

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.workload[each.key].id]
  }

  registry {
    server   = azurerm_container_registry.main.login_server
    identity = azurerm_user_assigned_identity.workload[each.key].id
  }

  ingress {
    # Only the web faces the internet; the APIs answer inside the environment only.
    external_enabled           = each.value.external
    allow_insecure_connections = false
    target_port                = each.value.port
    transport                  = "http"

    traffic_weight {
      latest_revision = true
      percentage      = 100
    }
  }

  dynamic "secret" {
    for_each = each.key == "web" ? [azurerm_key_vault_secret.session_key] : []
    content {
      name                = secret.value.name
      key_vault_secret_id = secret.value.versionless_id
      identity            = azurerm_user_assigned_identity.workload[each.key].id
    }
  }

  template {
    min_replicas = var.min_replicas
    max_replicas = var.max_replicas

    http_scale_rule {
      name                = "http"
      concurrent_requests = tostring(var.concurrent_requests)
    }

    dynamic "volume" {
      for_each = each.key == "web" ? ["secrets"] : []
      content {
        name         = volume.value
        storage_type = "Secret"
      }
    }

    container {
      name   = each.key
      image  = var.placeholder_image
      cpu    = var.service_cpu
      memory = var.service_memory

      dynamic "env" {
        for_each = merge(local.common[each.key], each.value.env)
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "volume_mounts" {
        for_each = each.key == "web" ? ["secrets"] : []
        content {
          name = volume_mounts.value
          path = "/mnt/secrets"
        }
      }

      # The services answer only their own host name (zerotrust.hosts), so the probes send it.
      liveness_probe {
        transport = "HTTP"
        port      = each.value.port
        path      = "/healthz"

        header {
          name  = "Host"
          value = each.value.host
        }
      }

      readiness_probe {
        transport = "HTTP"
        port      = each.value.port
        path      = "/healthz"

        header {
          name  = "Host"
          value = each.value.host
        }
      }
    }
  }

  lifecycle {
    # azd deploy sets the image it built; Terraform must not put the placeholder back.
    ignore_changes = [template[0].container[0].image]
  }

  depends_on = [azurerm_role_assignment.acr_pull, azurerm_role_assignment.web_session_key]
}
