"""OpenID Connect discovery and the signing key set, per tenant and for the multi-tenant endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .forms import emulator

router = APIRouter()

# Discovery documents and keys change rarely; relying parties cache them (Entra allows a day).
CACHE = {"Cache-Control": "max-age=300, private"}


@router.get("/{tenant}/v2.0/.well-known/openid-configuration", tags=["protocol"])
async def openid_configuration(tenant: str, request: Request) -> JSONResponse:
    emu = emulator(request)
    t = emu.tenant_for_path(tenant)
    # The multi-tenant endpoints publish a templated issuer, exactly as Entra does: validators
    # must substitute the token's own tid and then compare, never accept any issuer.
    tid = t.tenant_id if t else "{tenantid}"
    seg = t.tenant_id if t else tenant
    back, front = emu.settings.issuer_base, emu.settings.front_base
    doc: dict[str, Any] = {
        "issuer": f"{back}/{tid}/v2.0",
        "authorization_endpoint": f"{front}/{seg}/oauth2/v2.0/authorize",
        "token_endpoint": f"{back}/{seg}/oauth2/v2.0/token",
        "device_authorization_endpoint": f"{back}/{seg}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{front}/{seg}/oauth2/v2.0/logout",
        "jwks_uri": f"{back}/{seg}/discovery/v2.0/keys",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "nbf",
            "auth_time",
            "nonce",
            "name",
            "preferred_username",
            "oid",
            "tid",
            "ver",
            "sid",
            "acct",
            "ctry",
            "login_hint",
        ],
        "request_uri_parameter_supported": False,
        "tenant_region_scope": "EU",
        "cloud_instance_name": "identity-emulator.localhost",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }
    return JSONResponse(doc, headers=CACHE)


@router.get("/{tenant}/discovery/v2.0/keys", tags=["protocol"])
async def keys(tenant: str, request: Request) -> JSONResponse:
    emu = emulator(request)
    emu.store.key_set_requests += 1
    t = emu.tenant_for_path(tenant)
    issuer = f"{emu.settings.issuer_base}/{t.tenant_id if t else '{tenantid}'}/v2.0"
    return JSONResponse({"keys": [k.jwk(issuer) for k in emu.keys.published()]}, headers=CACHE)
