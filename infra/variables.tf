# azd passes these from main.tfvars.json (its own environment's values).

variable "environment_name" {
  description = "The azd environment name (AZURE_ENV_NAME); names and tags every resource."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.environment_name))
    error_message = "environment_name: 2-21 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "location" {
  description = "Azure region (AZURE_LOCATION)."
  type        = string
}

variable "operator_ip_ranges" {
  description = <<-EOT
    Public addresses (CIDR) of whoever runs Terraform and `azd deploy`: the only ones the registry and
    Key Vault firewalls let in from outside the virtual network (to push images and write the session
    key), comma-separated (azd passes ZT_OPERATOR_IP_RANGES as one string). Empty: no access from outside
    at all (then run from a machine inside the network).
  EOT
  type        = string
  default     = ""
}

variable "vnet_address_space" {
  description = "Address space of the virtual network (apps /23, endpoints /27, database /28)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "service_cpu" {
  description = "vCPU per replica of web, api and downstream-api."
  type        = number
  default     = 0.5
}

variable "service_memory" {
  description = "Memory per replica (must match the vCPU: 0.5 -> 1Gi)."
  type        = string
  default     = "1Gi"
}

variable "min_replicas" {
  description = "Replicas kept running per service; at least 2, so one replica's loss is no outage."
  type        = number
  default     = 2

  validation {
    condition     = var.min_replicas >= 2
    error_message = "min_replicas must be at least 2 (no single replica in production)."
  }
}

variable "max_replicas" {
  description = "Upper bound of the http scale rule per service."
  type        = number
  default     = 10
}

variable "concurrent_requests" {
  description = "Concurrent requests per replica above which the http scale rule adds one."
  type        = number
  default     = 50
}

variable "daemon_schedule" {
  description = "Cron expression (UTC) of the daemon's scheduled run (the tenant report)."
  type        = string
  default     = "0 6 * * *"
}

variable "postgres_sku" {
  description = "PostgreSQL flexible server SKU."
  type        = string
  default     = "GP_Standard_D2ds_v5"
}

variable "redis_sku" {
  description = "Azure Cache for Redis SKU (Standard or Premium: replicated, Entra authentication)."
  type        = string
  default     = "Standard"
}

variable "redis_capacity" {
  description = "Azure Cache for Redis capacity within its family."
  type        = number
  default     = 1
}

variable "placeholder_image" {
  description = <<-EOT
    The image each app starts with before `azd deploy` pushes the real one (Terraform then leaves the
    image to azd). Public, pulled anonymously from Microsoft's registry.
  EOT
  type        = string
  default     = "mcr.microsoft.com/k8se/quickstart:latest"
}

variable "session_key_version" {
  description = "Increase to generate a new session sealing key (every signed-in session ends)."
  type        = number
  default     = 1
}
