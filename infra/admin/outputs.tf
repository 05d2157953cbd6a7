# Ids only; nothing here is a secret.

output "conditional_access_policy_id" {
  value = azuread_conditional_access_policy.require_mfa.id
}

output "app_only_grants" {
  description = "The app-only permissions granted, as client->resource/role."
  value       = keys(azuread_app_role_assignment.app_only)
}
