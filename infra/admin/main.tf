# zt: identity-developer-administrator-responsibilities
# Admin consent and assignments, derived from the same manifest the developer root and the emulator
# read (what each app asks for), so an administrator reviews one file and grants exactly that.
# zt: permissions-require-admin-consent

locals {
  manifest = yamldecode(file("${path.module}/../registrations.yaml"))
  apps     = local.manifest.applications
  graph_id = local.manifest.microsoft_apis.graph.application_id
  # Entra's "default access" role, for an app that publishes no User role.
  default_access = "00000000-0000-0000-0000-000000000000"

  # App-only permissions (app roles for applications): only an administrator can grant them.
  app_only = merge([for client, app in local.apps : merge([
    for resource, want in try(app.required_resource_access, {}) : {
      for role in try(want.app_roles, []) : "${client}->${resource}/${role}" => {
        client = client, resource = resource, role = role
      }
    } if resource != "graph"
  ]...)]...)

  # Microsoft Graph's delegated scopes the apps ask for (User.Read): granted for everyone, as most
  # tenants do, so no one is asked at sign-in. Our own APIs' scopes are not granted here: users
  # consent to the ordinary ones, and the admin-consent ones are granted through the admin consent
  # flow the web app leads an administrator to (permissions-require-admin-consent).
  graph_grants = {
    for client, app in local.apps : client => app.required_resource_access.graph.scopes
    if length(try(app.required_resource_access.graph.scopes, [])) > 0
  }

  user_assignments = merge([for app, principals in var.user_assignments : {
    for p in principals : "${app}/${p}" => { app = app, principal = p }
  }]...)
}

data "azuread_service_principal" "app" {
  for_each  = var.client_ids
  client_id = each.value
}

data "azuread_service_principal" "graph" {
  client_id = local.graph_id
}

resource "azuread_app_role_assignment" "app_only" {
  for_each = local.app_only

  resource_object_id  = data.azuread_service_principal.app[each.value.resource].object_id
  app_role_id         = data.azuread_service_principal.app[each.value.resource].app_role_ids[each.value.role]
  principal_object_id = data.azuread_service_principal.app[each.value.client].object_id
}

resource "azuread_service_principal_delegated_permission_grant" "graph" {
  for_each = local.graph_grants

  service_principal_object_id          = data.azuread_service_principal.app[each.key].object_id
  resource_service_principal_object_id = data.azuread_service_principal.graph.object_id
  claim_values                         = each.value
}

# region quote: user-assignment
# Assignment is required on every app: only those assigned get a token for it at all.
resource "azuread_app_role_assignment" "user" {
  for_each = local.user_assignments

  resource_object_id  = data.azuread_service_principal.app[each.value.app].object_id
  app_role_id         = lookup(data.azuread_service_principal.app[each.value.app].app_role_ids, "User", local.default_access)
  principal_object_id = each.value.principal
}
# endregion

resource "azuread_app_role_assignment" "role" {
  for_each = { for a in var.role_assignments : "${a.app}/${a.role}/${a.principal_object_id}" => a }

  resource_object_id  = data.azuread_service_principal.app[each.value.app].object_id
  app_role_id         = data.azuread_service_principal.app[each.value.app].app_role_ids[each.value.role]
  principal_object_id = each.value.principal_object_id
}

# The developer root creates each service principal with assignment required and then leaves the
# setting alone (the manifest's admin_owned); the administrator's plan says if one lost it.
check "assignment_required" {
  assert {
    condition = alltrue([
      for name, sp in data.azuread_service_principal.app : sp.app_role_assignment_required
      if try(local.apps[name].app_role_assignment_required, true)
    ])
    error_message = "An app no longer requires assignment: anyone in the tenant could get a token for it."
  }
}
