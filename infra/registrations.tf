# zt: app-registration
# One app registration per entry of registrations.yaml, built from the split azuread resources
# (azuread_application_registration plus one resource per concern) rather than azuread_application:
# the web asks the api for scopes while the api names the web a known client, and an identifier URI
# holds its own app's id, so one for_each resource would have to refer to itself.
#
# No azuread_application_password and no certificate: each confidential client proves itself with its
# own managed identity, registered as a federated identity credential.

locals {
  # "{web_origin}" in the manifest is the web's origin; localhost redirect URIs become the deployed web's.
  localhost_origin = "http://localhost:8000"

  # Every id an app publishes (scopes and app roles), by app and value, for the other apps to ask for.
  scope_ids = merge(
    { for name, app in local.apps : name => { for s in try(app.scopes, []) : s.value => s.id } },
    { for name, api in local.microsoft_api : name => { for s in try(api.scopes, []) : s.value => s.id } },
  )
  role_ids = { for name, app in local.apps : name => { for r in try(app.app_roles, []) : r.value => r.id } }

  scopes = merge([for name, app in local.apps : {
    for s in try(app.scopes, []) : "${name}/${s.value}" => merge(s, { app = name })
  }]...)
  app_roles = merge([for name, app in local.apps : {
    for r in try(app.app_roles, []) : "${name}/${r.value}" => merge(r, { app = name })
  }]...)

  # What each app asks for, per resource: one of our apps, or one of Microsoft's (Graph).
  api_access = merge([for name, app in local.apps : {
    for resource, want in try(app.required_resource_access, {}) : "${name}->${resource}" => {
      app      = name
      resource = resource
      scopes   = try(want.scopes, [])
      roles    = try(want.app_roles, [])
    }
  }]...)

  pre_authorized = merge([for name, app in local.apps : {
    for p in try(app.pre_authorized_applications, []) : "${name}<-${p.application}" => {
      app    = name
      client = p.application
      scopes = p.scopes
    }
  }]...)

  federated_credentials = merge([for name, app in local.apps : {
    for c in try(app.federated_credentials, []) : "${name}/${c.name}" => merge(c, { app = name })
  }]...)

  # "deployer" owns what it creates (Graph makes the creating principal an owner; the check below
  # says so if that ever stops being true); any other owner named in the manifest is added.
  owners = merge([for name, app in local.apps : {
    for o in try(app.owners, ["deployer"]) : "${name}/${o}" => { app = name, object_id = o } if o != "deployer"
  }]...)

  redirect_uris = {
    for name, app in local.apps : name => [
      for uri in concat(try(app.redirect_uris, []), try(app.post_logout_redirect_uris, [])) :
      startswith(uri, local.localhost_origin) ? "${local.web_origin}${trimprefix(uri, local.localhost_origin)}" : uri
    ] if length(try(app.redirect_uris, [])) > 0
  }

  client_ids = { for name, reg in azuread_application_registration.app : name => reg.client_id }
}

resource "azuread_application_registration" "app" {
  for_each = local.apps

  display_name     = each.value.display_name
  sign_in_audience = each.value.sign_in_audience
  # Tokens for our APIs are v2.0 (the issuer the services check).
  requested_access_token_version = try(each.value.requested_access_token_version, 2)
  group_membership_claims        = [try(each.value.group_membership_claims, "None")]

  # zt: app-registration
  # The implicit grant returns tokens in the URL: off for every app (authorization code + PKCE instead).
  implicit_access_token_issuance_enabled = try(each.value.implicit_grant.access_tokens, false)
  implicit_id_token_issuance_enabled     = try(each.value.implicit_grant.id_tokens, false)

  terms_of_service_url  = try(replace(each.value.info.terms_of_service_url, "{web_origin}", local.web_origin), null)
  privacy_statement_url = try(replace(each.value.info.privacy_statement_url, "{web_origin}", local.web_origin), null)
  homepage_url          = each.key == "web" ? local.web_origin : null
}

resource "azuread_application_owner" "app" {
  for_each = local.owners

  application_id  = azuread_application_registration.app[each.value.app].id
  owner_object_id = each.value.object_id
}

check "deployer_owns_registrations" {
  data "azuread_application" "created" {
    client_id = azuread_application_registration.app["web"].client_id
  }

  assert {
    condition     = contains(data.azuread_application.created.owners, data.azuread_client_config.current.object_id)
    error_message = "The identity running this root is not an owner of the registrations it created: add it (manifest owners: [deployer])."
  }
}

resource "azuread_application_identifier_uri" "app" {
  for_each = { for name, app in local.apps : name => app if can(app.identifier_uri) }

  application_id = azuread_application_registration.app[each.key].id
  identifier_uri = replace(each.value.identifier_uri, "{application_id}", azuread_application_registration.app[each.key].client_id)
}

resource "azuread_application_permission_scope" "scope" {
  for_each = local.scopes

  application_id = azuread_application_registration.app[each.value.app].id
  scope_id       = each.value.id
  value          = each.value.value
  # zt: permissions-require-admin-consent
  type                       = each.value.admin_consent_required ? "Admin" : "User"
  admin_consent_display_name = each.value.value
  admin_consent_description  = each.value.description
  user_consent_display_name  = each.value.value
  user_consent_description   = each.value.description
}

resource "azuread_application_app_role" "role" {
  for_each = local.app_roles

  application_id       = azuread_application_registration.app[each.value.app].id
  role_id              = each.value.id
  value                = each.value.value
  allowed_member_types = each.value.allowed_member_types
  display_name         = each.value.value
  description          = try(each.value.description, each.value.value)
}

resource "azuread_application_api_access" "access" {
  for_each = local.api_access

  application_id = azuread_application_registration.app[each.value.app].id
  api_client_id = (contains(keys(local.microsoft_api), each.value.resource)
    ? local.microsoft_api[each.value.resource].application_id
  : azuread_application_registration.app[each.value.resource].client_id)
  scope_ids = [for s in each.value.scopes : local.scope_ids[each.value.resource][s]]
  role_ids  = [for r in each.value.roles : local.role_ids[each.value.resource][r]]

  # The ids must exist on the resource's registration before another app can ask for them.
  depends_on = [azuread_application_permission_scope.scope, azuread_application_app_role.role]
}

# First-party clients (the CLI for the api, the api for downstream-api): no consent prompt for them.
resource "azuread_application_pre_authorized" "client" {
  for_each = local.pre_authorized

  application_id       = azuread_application_registration.app[each.value.app].id
  authorized_client_id = azuread_application_registration.app[each.value.client].client_id
  permission_ids       = [for s in each.value.scopes : local.scope_ids[each.value.app][s]]

  depends_on = [azuread_application_permission_scope.scope]
}

# Consent to the web app also covers the api's downstream needs (combined consent).
resource "azuread_application_known_clients" "api" {
  for_each = { for name, app in local.apps : name => app if length(try(app.known_client_applications, [])) > 0 }

  application_id   = azuread_application_registration.app[each.key].id
  known_client_ids = [for c in each.value.known_client_applications : azuread_application_registration.app[c].client_id]
}

resource "azuread_application_optional_claims" "claims" {
  for_each = { for name, app in local.apps : name => app.optional_claims if can(app.optional_claims) }

  application_id = azuread_application_registration.app[each.key].id

  dynamic "access_token" {
    for_each = try(each.value.access_token, [])
    content {
      name = access_token.value
    }
  }

  dynamic "id_token" {
    for_each = try(each.value.id_token, [])
    content {
      name = id_token.value
    }
  }
}

# zt: app-registration
# Exact redirect URIs: the manifest's localhost ones moved to the deployed web's https origin; the
# CLI keeps its loopback URI as a public client (Entra accepts any port on http://localhost).
resource "azuread_application_redirect_uris" "app" {
  for_each = local.redirect_uris

  application_id = azuread_application_registration.app[each.key].id
  type           = try(local.apps[each.key].client_type, "confidential") == "public" ? "PublicClient" : "Web"
  redirect_uris  = each.value
}

resource "azuread_application_fallback_public_client" "app" {
  for_each = { for name, app in local.apps : name => app if try(app.allow_public_client_flows, false) }

  application_id = azuread_application_registration.app[each.key].id
  enabled        = true
}

# zt: identity-non-user-applications
# The managed identity's token is the app's client assertion: nothing to store, rotate or leak.
resource "azuread_application_federated_identity_credential" "managed_identity" {
  for_each = local.federated_credentials

  application_id = azuread_application_registration.app[each.value.app].id
  display_name   = each.value.name
  description    = "The ${each.value.managed_identity} managed identity of this deployment."
  issuer         = local.issuer
  subject        = azurerm_user_assigned_identity.workload[each.value.managed_identity].principal_id
  audiences      = each.value.audiences
}

resource "azuread_service_principal" "app" {
  for_each = local.apps

  client_id = azuread_application_registration.app[each.key].client_id
  owners    = [data.azuread_client_config.current.object_id]
  # Secure by default at creation; afterwards the administrator owns it (the manifest's admin_owned),
  # so later changes made there are not reverted here. admin/ checks it is still on.
  app_role_assignment_required = try(each.value.app_role_assignment_required, true)

  lifecycle {
    ignore_changes = [app_role_assignment_required]
  }
}
