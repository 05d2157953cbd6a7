# zt: identity-developer-administrator-responsibilities
# The administrator root: what a tenant administrator decides and the developer cannot, run with
# the administrator's own identity, after the developer root (../) has created the registrations:
# admin consent (tenant-wide delegated grants and app-only app role assignments), who may use the
# apps (assignment to the baseline User role), and Conditional Access. It changes no Azure resource.
#
# Roles the identity running it needs (Entra): Privileged Role Administrator, or Cloud Application
# Administrator for consent and assignments plus Conditional Access Administrator for the policy.
# As a service principal: AppRoleAssignment.ReadWrite.All, DelegatedPermissionGrant.ReadWrite.All,
# Application.Read.All, Policy.ReadWrite.ConditionalAccess, Policy.Read.All.

terraform {
  required_version = ">= 1.11"

  # State in a storage account reached with Entra ID (no account key), never on one laptop or lost with
  # a CI runner: values from -backend-config (the deploy workflow) or azd's provider.conf.json.
  backend "azurerm" {}

  required_providers {
    azuread = {
      source  = "hashicorp/azuread"
      version = "~> 3.4"
    }
  }
}

provider "azuread" {}
