#!/bin/sh
# azd hook (postdeploy): run the migration job with the downstream-api image azd just deployed, and
# fail the deployment if it fails. After deploy, not after provision: the image exists only then.
# Uses the operator's Azure CLI sign-in; no credential of the database is involved here, the job
# runs inside the network as the database-admin managed identity.
set -eu

: "${AZURE_RESOURCE_GROUP:?run through azd (azd up / azd deploy), which sets it}"
: "${MIGRATION_JOB_NAME:?missing: an output of infra/}"
: "${DOWNSTREAM_API_APP_NAME:?missing: an output of infra/}"

image=$(az containerapp show -g "$AZURE_RESOURCE_GROUP" -n "$DOWNSTREAM_API_APP_NAME" \
  --query 'properties.template.containers[0].image' -o tsv)
echo "migrate: running $MIGRATION_JOB_NAME with $image"
az containerapp job update -g "$AZURE_RESOURCE_GROUP" -n "$MIGRATION_JOB_NAME" --image "$image" -o none
execution=$(az containerapp job start -g "$AZURE_RESOURCE_GROUP" -n "$MIGRATION_JOB_NAME" --query name -o tsv)

# Bounded: ten minutes, the job's own replica timeout.
for _ in $(seq 1 60); do
  status=$(az containerapp job execution show -g "$AZURE_RESOURCE_GROUP" -n "$MIGRATION_JOB_NAME" \
    --job-execution-name "$execution" --query 'properties.status' -o tsv)
  case "$status" in
    Succeeded) echo "migrate: $execution succeeded"; exit 0 ;;
    Failed | Stopped | Degraded)
      echo "migrate: $execution $status; see its logs in Log Analytics (ContainerAppConsoleLogs)" >&2
      exit 1 ;;
  esac
  sleep 10
done
echo "migrate: $execution still running after 10 minutes" >&2
exit 1
