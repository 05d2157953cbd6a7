variable "client_ids" {
  description = "Application (client) ids by manifest name: the developer root's CLIENT_IDS output."
  type        = map(string)
}

variable "user_assignments" {
  description = <<-EOT
    Who may sign in to each app (assignment is required on every one): app name -> object ids of
    users or, better, groups, given the app's baseline User role. Apps users reach through the web
    (api, downstream-api) need the same people; the CLI only those who use it.
  EOT
  type        = map(list(string))
  default     = {}
}

variable "role_assignments" {
  description = "Further user app roles, e.g. {app = \"api\", role = \"Tasks.Admin\", principal_object_id = <group>}."
  type = list(object({
    app                 = string
    role                = string
    principal_object_id = string
  }))
  default = []
}

variable "conditional_access_state" {
  description = <<-EOT
    State of the policy requiring multifactor authentication for the sample's apps. Report-only by
    default, as Microsoft advises for a new policy: read its sign-in log results, then set "enabled".
  EOT
  type        = string
  default     = "enabledForReportingButNotEnforced"

  validation {
    condition     = contains(["enabled", "enabledForReportingButNotEnforced", "disabled"], var.conditional_access_state)
    error_message = "conditional_access_state: enabled, enabledForReportingButNotEnforced or disabled."
  }
}

variable "conditional_access_excluded_users" {
  description = "Object ids kept out of the policy: the tenant's emergency access (break-glass) accounts."
  type        = list(string)
  default     = []
}
