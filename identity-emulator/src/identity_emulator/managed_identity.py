"""A managed-identity endpoint on Azure App Service's protocol (api-version 2019-08-01).

azure-identity's ManagedIdentityCredential calls it when IDENTITY_ENDPOINT and IDENTITY_HEADER are
set, as App Service and Container Apps set them. Each service gets its own header value, and the
value decides which identity answers: a service can obtain only its own identity's tokens.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .directory import OSSRDBMS_RESOURCE, REDIS_RESOURCE, TOKEN_EXCHANGE_AUDIENCE
from .forms import emulator, require_back_channel

router = APIRouter()


def _problem(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers={"Cache-Control": "no-store"}
    )


@router.get("/msi/token", tags=["managed identity"])
async def token(request: Request) -> JSONResponse:
    require_back_channel(request)
    emu = emulator(request)
    q = request.query_params
    presented = request.headers.get("x-identity-header", "")
    name = next(
        (
            n
            for n, secret in emu.identity_headers.items()
            if presented and hmac.compare_digest(presented.encode(), secret.encode())
        ),
        None,
    )
    if name is None:
        return _problem(
            401,
            "invalid_request",
            "Missing or unknown X-IDENTITY-HEADER: this endpoint serves only the workload it was handed to.",
        )
    if q.get("api-version") != "2019-08-01":
        return _problem(400, "invalid_request", "api-version must be 2019-08-01.")
    mi = emu.directory.managed_identities[name]
    for param, expected in (("client_id", mi.client_id), ("principal_id", mi.object_id)):
        if q.get(param) and q[param].lower() != expected:
            return _problem(400, "invalid_request", f"This workload has no identity with {param} {q[param][:64]!r}.")
    resource = (q.get("resource") or "").removesuffix("/.default").rstrip("/")
    roles: list[str] = []
    if resource in (TOKEN_EXCHANGE_AUDIENCE, OSSRDBMS_RESOURCE, REDIS_RESOURCE):
        audience = resource
    else:
        app = emu.directory.resource(resource)
        if app is None:
            return _problem(
                400,
                "invalid_resource",
                f"AADSTS500011: The resource principal named {resource[:200]!r} was not found in the tenant.",
            )
        audience = app.application_id
        granted = emu.store.admin.admin_roles.get((emu.directory.home_tenant_id, mi.client_id, app.application_id))
        roles = sorted(granted or ())
        if app.app_role_assignment_required and not roles:
            # zt: app-registration - as at the token endpoint: no app role on an app that requires assignment.
            return _problem(
                400,
                "invalid_grant",
                f"AADSTS501051: Application '{mi.client_id}'({mi.name}) is not assigned to a role for the "
                f"application '{app.identifier_uri or app.application_id}'({app.display_name}).",
            )
    access, exp = emu.issuer.managed_identity_token(mi, audience, roles)
    return JSONResponse(
        {
            "access_token": access,
            "expires_on": str(exp),
            "resource": q.get("resource"),
            "token_type": "Bearer",  # a token type, not a secret  # nosec B105
            "client_id": mi.client_id,
        },
        headers={"Cache-Control": "no-store"},
    )
