"""Every route of both APIs, declared once: what it accepts and how to call it well.

# zt: developer-strategy-authorization-best-practices
test_matrix.py runs the same attacks on each row over HTTPS (right and wrong permission, wrong
token type, someone else's object, another tenant, mass assignment), and fails when a route the
apps serve has no row here. A new route is one new `Route(...)` line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tests.authz.chain import EVERYONE_AT_CONTOSO

TASKS_READ = ("Tasks.Read", "Tasks.ReadWrite")
TASKS_WRITE = ("Tasks.ReadWrite",)
RECORDS_READ = ("Records.Read", "Records.ReadWrite")
RECORDS_WRITE = ("Records.ReadWrite",)

# Fields no caller may set: whose it is, which tenant, its id, who may see it, what roles it grants.
MASS_ASSIGNMENT = {
    "owner": "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b",
    "owner_oid": "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b",
    "tenant_id": "7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b",
    "tid": "7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b",
    "id": "00000000-0000-4000-8000-000000000000",
    "roles": ["Tasks.Admin"],
    "shared_with": ["4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b"],
    "shared_group_id": EVERYONE_AT_CONTOSO,
}


@dataclass(frozen=True)
class Route:
    service: Literal["api", "downstream-api"]
    method: str
    path: str  # as served; "{id}"-style segments name one of the caller's objects
    accepts: tuple[str, ...]  # scopes (delegated) or app roles (app-only), any one of them
    token: Literal["delegated", "app-only"] = "delegated"
    body: dict[str, Any] | None = None
    ok: int = 200
    # The service's other permissions, none of which is enough here (for the wrong-permission case).
    wrong: tuple[str, ...] = field(default=())

    @property
    def object_param(self) -> str | None:
        start = self.path.find("{")
        return self.path[start + 1 : self.path.index("}")] if start >= 0 else None

    @property
    def id(self) -> str:
        return f"{self.service} {self.method} {self.path}"


ROUTES = [
    # -- api ----------------------------------------------------------------------------------
    Route("api", "GET", "/me", TASKS_READ, wrong=("Tasks.Read.All",)),
    Route("api", "GET", "/tasks", TASKS_READ, wrong=("Tasks.Read.All",)),
    Route("api", "POST", "/tasks", TASKS_WRITE, body={"title": "matrix"}, ok=201, wrong=("Tasks.Read",)),
    Route("api", "GET", "/tasks/shared", TASKS_READ, wrong=("Tasks.Read.All",)),
    Route("api", "GET", "/tasks/{task_id}", TASKS_READ, wrong=("Tasks.Read.All",)),
    Route("api", "PATCH", "/tasks/{task_id}", TASKS_WRITE, body={"done": True}, wrong=("Tasks.Read",)),
    Route("api", "DELETE", "/tasks/{task_id}", TASKS_WRITE, ok=204, wrong=("Tasks.Read",)),
    Route(
        "api",
        "PUT",
        "/tasks/{task_id}/share",
        TASKS_WRITE,
        body={"group_id": EVERYONE_AT_CONTOSO},
        wrong=("Tasks.Read",),
    ),
    # -- downstream-api -----------------------------------------------------------------------
    Route("downstream-api", "GET", "/me", RECORDS_READ, wrong=("Tasks.ReadWrite",)),
    Route("downstream-api", "GET", "/records", RECORDS_READ, wrong=("Tasks.ReadWrite",)),
    Route(
        "downstream-api", "POST", "/records", RECORDS_WRITE, body={"title": "matrix"}, ok=201, wrong=("Records.Read",)
    ),
    Route("downstream-api", "GET", "/records/shared", RECORDS_READ, wrong=("Tasks.ReadWrite",)),
    Route("downstream-api", "GET", "/records/{record_id}", RECORDS_READ, wrong=("Tasks.ReadWrite",)),
    Route(
        "downstream-api", "PATCH", "/records/{record_id}", RECORDS_WRITE, body={"done": True}, wrong=("Records.Read",)
    ),
    Route("downstream-api", "DELETE", "/records/{record_id}", RECORDS_WRITE, ok=204, wrong=("Records.Read",)),
    Route(
        "downstream-api",
        "PUT",
        "/records/{record_id}/share",
        RECORDS_WRITE,
        body={"group_id": EVERYONE_AT_CONTOSO},
        wrong=("Records.Read",),
    ),
]

# Where a new object of the caller's comes from, per service (POST, write scope).
CREATE = {"api": "/tasks", "downstream-api": "/records"}
