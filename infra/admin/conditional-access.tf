# zt: identity-developer-administrator-responsibilities
# Conditional Access belongs to the administrator: multifactor authentication (the built-in
# authentication strength) for every sign-in to the sample's apps.
#
# The step-up the api asks for on sensitive routes (authentication context c1, api/dependencies.py)
# needs an authentication context and a policy targeting it; the azuread provider manages neither,
# so scripts/authentication-context.sh creates both through Microsoft Graph.

locals {
  # Built-in authentication strength "Multifactor authentication".
  mfa_strength = "00000000-0000-0000-0000-000000000002"
  user_facing  = [for name in ["web", "api", "downstream-api", "cli"] : var.client_ids[name] if contains(keys(var.client_ids), name)]
}

resource "azuread_conditional_access_policy" "require_mfa" {
  display_name = "Zero Trust Sample - require multifactor authentication"
  state        = var.conditional_access_state

  conditions {
    client_app_types = ["all"]

    applications {
      included_applications = local.user_facing
    }

    users {
      included_users = ["All"]
      excluded_users = var.conditional_access_excluded_users
    }
  }

  grant_controls {
    operator                          = "OR"
    authentication_strength_policy_id = "/policies/authenticationStrengthPolicies/${local.mfa_strength}"
  }
}
