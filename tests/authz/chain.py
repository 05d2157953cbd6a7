"""api and downstream-api running over HTTPS against an emulator, and tokens for its demo people.

Tokens are signed with the emulator's own key (tests.support.tokens.Issuer) and shaped as the
emulator issues them, groups claim or overage pointer included; everything past the first tier
(on-behalf-of, Graph) is the real protocol against the emulator.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msal
from devtools.signin import FormBrowser

from tests.support.launch import LiveEmulator, LiveService
from tests.support.tokens import Api, Issuer, apis_at, app_id, pairwise_subject

CONTOSO = "9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d"
FABRIKAM = "7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b"
EVERYONE_AT_CONTOSO = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"
ENGINEERING = "2a3b4c5d-6e7f-4081-9213-243546576879"


def generated_group(n: int, tenant_id: str = CONTOSO) -> str:
    """The object id of demo group project-<n> (identity-emulator/demo/directory.yaml: dave's)."""
    return str(uuid.uuid5(uuid.UUID(tenant_id), f"group:project-{n}"))


@dataclass(frozen=True)
class Person:
    upn: str
    oid: str
    tid: str
    name: str
    groups: tuple[str, ...] = ()
    overage: bool = False


# What a token holds after the second factor, from a client that declared cp1: sensitive actions need it.
STEPPED_UP: dict[str, Any] = {"acrs": ["c1"], "xms_cc": ["cp1"]}

ALICE = Person("alice@contoso.test", "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912", CONTOSO, "Alice Adams",
               (EVERYONE_AT_CONTOSO, ENGINEERING))  # fmt: skip
BOB = Person("bob@contoso.test", "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b", CONTOSO, "Bob Brown", (EVERYONE_AT_CONTOSO,))
DAVE = Person("dave@contoso.test", "5d6e7f80-91a2-43b4-85d6-e7f8091a2b3c", CONTOSO, "Dave Davis", overage=True)
CAROL = Person("carol@fabrikam.test", "7f8091a2-b3c4-45d6-a7f8-091a2b3c4d5e", FABRIKAM, "Carol Clark",
               ("6e7f8091-a2b3-44c5-96e7-f8091a2b3c4d",))  # fmt: skip


@dataclass
class Chain:
    emulator: LiveEmulator
    api: LiveService
    downstream: LiveService

    @property
    def apis(self) -> dict[str, Api]:
        return apis_at(self.api.base, self.downstream.base)

    def user_token(
        self,
        service: str,
        person: Person = ALICE,
        scp: str | None = None,
        claim_source: str | None = None,
        **extra: Any,
    ) -> str:
        """A delegated token `person` would hold for `service` (api: from the CLI; downstream-api:
        the api's on-behalf-of token), with scopes `scp` (default: the service's write scope)."""
        api = self.apis[service]
        issuer = Issuer(self.emulator)
        tenant = next(name for name, tid in issuer.tenants.items() if tid == person.tid)
        claims = issuer.claims(
            api,
            iss=issuer.issuer(tenant),
            tid=person.tid,
            oid=person.oid,
            sub=pairwise_subject(person.oid, api.app_id),
            name=person.name,
            preferred_username=person.upn,
            scp=scp if scp is not None else " ".join(api.write_scopes),
            azp=app_id("cli") if service == "api" else app_id("api"),
            azpacr="0" if service == "api" else "2",
        )
        if person.overage:
            # As Entra sends it when the groups don't fit: a pointer this app must never follow.
            endpoint = claim_source or f"https://graph.microsoft.com/v1.0/users/{person.oid}/getMemberObjects"
            claims["_claim_names"] = {"groups": "src1"}
            claims["_claim_sources"] = {"src1": {"endpoint": endpoint}}
        else:
            claims["groups"] = list(person.groups)
        claims.update(extra)
        return issuer.sign(claims)

    def signed_in(
        self, person: Person, *, capable: bool, claims_challenge: str | None = None, scope: str = "Tasks.ReadWrite"
    ) -> str:
        """An api token as the emulator issues it to the CLI after a real sign-in (cp1 declared or not); with a
        claims challenge asking for an authentication context, the one-time code is read and typed too."""
        emu = self.emulator
        app = msal.PublicClientApplication(
            emu.app_id("cli"),
            authority=emu.authority(),
            client_capabilities=["CP1"] if capable else None,
            verify=str(emu.tls.ca_bundle),
            instance_discovery=False,
        )
        flow = app.initiate_auth_code_flow(
            [f"api://{emu.app_id('api')}/{scope}"], redirect_uri="http://localhost", claims_challenge=claims_challenge
        )
        browser = FormBrowser()
        response = browser.sign_in(flow["auth_uri"], person.upn, emu.password)
        if response.status_code == 200 and "Verify it's you" in response.text:
            codes = emu.administrator.get("/admin/one-time-codes")["codes"]
            [code] = [c["code"] for c in codes if c["upn"] == person.upn]
            response = browser.submit(response, {"code": code})
        assert response.status_code == 302, response.text[:300]
        answer = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}
        result = app.acquire_token_by_auth_code_flow(flow, answer)
        assert "access_token" in result, result
        return str(result["access_token"])

    def app_token(self, service: str, roles: list[str], tid: str = CONTOSO) -> str:
        """App-only (client credentials) from a client `service` takes app-only tokens from (the
        daemon at the api, the api downstream): no user, no scp; roles granted to the calling app.
        Each call is another app instance (a new oid), as two service principals would be."""
        api = self.apis[service]
        issuer = Issuer(self.emulator)
        tenant = next(name for name, t in issuer.tenants.items() if t == tid)
        app_oid = str(uuid.uuid4())
        claims = issuer.claims(
            api,
            iss=issuer.issuer(tenant),
            tid=tid,
            idtyp="app",
            oid=app_oid,
            sub=app_oid,
            roles=roles,
            azp=api.app_caller,
            azpacr="2",
        )
        for absent in ("scp", "name", "preferred_username"):
            claims.pop(absent, None)
        return issuer.sign(claims)

    def http(self, service: str) -> httpx.Client:
        return (self.api if service == "api" else self.downstream).http()

    def call(
        self,
        service: str,
        method: str,
        path: str,
        token: str | None,
        body: Any = None,
        media_type: str = "application/json",
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with self.http(service) as http:
            if body is None:
                return http.request(method, path, headers=headers)
            headers |= {"Content-Type": media_type, "Accept": media_type}
            return http.request(method, path, headers=headers, content=json.dumps(body).encode())


def start_chain(
    emulator: LiveEmulator, start: Callable[..., LiveService], state: Path, tenants: list[str] | None = None
) -> Chain:
    """downstream-api and api against `emulator`; `tenants`: every tier's allowlist (home first)."""
    allowed = ",".join(tenants or [])
    downstream = start(
        "downstream_api",
        "DOWNSTREAM",
        {
            **emulator.managed_identity_env("downstream-api"),
            "DOWNSTREAM_AUTHORITY": emulator.authority(),
            "DOWNSTREAM_STATE_DIR": str(state / "downstream"),
            "DOWNSTREAM_GRAPH_URL": emulator.base,
            "DOWNSTREAM_ALLOWED_TENANTS": allowed,
            "DOWNSTREAM_LOG_LEVEL": "warning",
        },
        emulator=emulator,
    )
    api_env = {
        **emulator.managed_identity_env("api"),
        "API_AUTHORITY": emulator.authority(),
        "API_DOWNSTREAM_URL": downstream.base,
    }
    if tenants:
        api_env["API_ALLOWED_TENANTS"] = allowed
    api = start("api", "API", api_env, emulator=emulator)
    return Chain(emulator, api, downstream)
