# The developer root: what the application team owns and runs with its own identity (see admin/ for
# what a tenant administrator owns).
# zt: identity-developer-administrator-responsibilities
#
# `terraform validate` needs the providers, which cannot be downloaded on the machine the tests run
# on; tests/infra checks formatting, parses every file and runs checkov instead.

terraform {
  # Write-only arguments (the session key never lands in the state) need Terraform 1.11.
  required_version = ">= 1.11"

  # State in a storage account reached with Entra ID (no account key), never on one laptop or lost with
  # a CI runner: values from -backend-config (the deploy workflow) or azd's provider.conf.json.
  backend "azurerm" {}

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 4.42: `rbac_authorization_enabled` on Key Vault; 4.23: write-only Key Vault secret values.
      version = "~> 4.42"
    }
    azuread = {
      source  = "hashicorp/azuread"
      version = "~> 3.4"
    }
    random = {
      source = "hashicorp/random"
      # 3.7: ephemeral random_password, so the generated key is never stored.
      version = "~> 3.7"
    }
  }
}

provider "azurerm" {
  features {
    key_vault {
      # Purge protection is on: a deleted vault is kept, never purged by a `terraform destroy`.
      purge_soft_delete_on_destroy = false
    }
  }
  # Entra tokens for storage data-plane calls, never account keys.
  storage_use_azuread = true
}

provider "azuread" {}
