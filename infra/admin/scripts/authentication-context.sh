#!/bin/sh
# Run by the tenant administrator (Conditional Access Administrator), signed in with `az login`:
# the authentication context the api's sensitive routes ask for (c1, api/dependencies.py STEP_UP) and
# the Conditional Access policy that meets it with multifactor authentication. Both through Microsoft
# Graph, because the azuread provider manages neither. Idempotent (PUT for the context; the policy is
# created only when none of that name exists).
set -eu

context="${ZT_AUTH_CONTEXT:-c1}"
state="${ZT_CA_STATE:-enabledForReportingButNotEnforced}"
name="Zero Trust Sample - step-up for authentication context $context"
graph=https://graph.microsoft.com/v1.0/identity/conditionalAccess

az rest --method put --url "$graph/authenticationContextClassReferences/$context" --body "{
  \"displayName\": \"Zero Trust Sample step-up\",
  \"description\": \"Sensitive actions of the Zero Trust sample (changing tasks, administration)\",
  \"isAvailable\": true
}" -o none

existing=$(az rest --method get --url "$graph/policies" \
  --query "length(value[?displayName=='$name'])" -o tsv)
if [ "$existing" = "0" ]; then
  az rest --method post --url "$graph/policies" --body "{
    \"displayName\": \"$name\",
    \"state\": \"$state\",
    \"conditions\": {
      \"clientAppTypes\": [\"all\"],
      \"applications\": {\"includeAuthenticationContextClassReferences\": [\"$context\"]},
      \"users\": {\"includeUsers\": [\"All\"]}
    },
    \"grantControls\": {
      \"operator\": \"OR\",
      \"authenticationStrength\": {\"id\": \"00000000-0000-0000-0000-000000000002\"}
    }
  }" -o none
fi
echo "authentication context $context and its policy ($state) are in place"
