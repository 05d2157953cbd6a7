"""Every route of both APIs, declared once: what it accepts and how to call it well.

# zt: developer-strategy-authorization-best-practices
test_matrix.py runs the same attacks on each row over HTTPS (right and wrong permission, wrong
token type, someone else's object, another tenant, mass assignment), and fails when a route the
apps serve has no row here. A new route is one new `Route(...)` line; a new kind of object (what
an `{id}` segment names) is one new `Objects(...)`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.authz.chain import EVERYONE_AT_CONTOSO, FABRIKAM

TASKS_READ = ("Tasks.Read", "Tasks.ReadWrite")
TASKS_WRITE = ("Tasks.ReadWrite",)
RECORDS_READ = ("Records.Read", "Records.ReadWrite")
RECORDS_WRITE = ("Records.ReadWrite",)
STEP_UP = ("c1",)  # the authentication context sensitive actions need

JSON = "application/json"
SCIM = "application/scim+json"
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

Body = dict[str, Any]


@dataclass(frozen=True)
class Refusal:
    """How a route turns a body down: the status, and one key/value of the error body."""

    status: int
    key: str
    value: str


INVALID_REQUEST = Refusal(422, "error", "invalid_request")
SCIM_INVALID_SYNTAX = Refusal(400, "scimType", "invalidSyntax")
SCIM_INVALID_PATH = Refusal(400, "scimType", "invalidPath")
SCIM_MUTABILITY = Refusal(400, "scimType", "mutability")


def _top_level(body: Body, name: str, value: Any) -> Body:
    return {**body, name: value}


def _patch_operation(body: Body, name: str, value: Any) -> Body:
    return {**body, "Operations": [*body["Operations"], {"op": "replace", "path": name, "value": value}]}


@dataclass(frozen=True)
class MassAssignment:
    """Fields no caller may set, each slipped into an otherwise good body (`into`), and the refusal."""

    fields: Mapping[str, Any]
    refusal: Refusal
    into: Callable[[Body, str, Any], Body] = _top_level


# Whose it is, which tenant, its id, who may see it, what roles it grants.
MASS_ASSIGNMENT = MassAssignment(
    {
        "owner": "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b",
        "owner_oid": "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b",
        "tenant_id": FABRIKAM,
        "tid": FABRIKAM,
        "id": "00000000-0000-4000-8000-000000000000",
        "roles": ["Tasks.Admin"],
        "shared_with": ["4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b"],
        "shared_group_id": EVERYONE_AT_CONTOSO,
    },
    INVALID_REQUEST,
)
# SCIM: attributes the resource doesn't have are refused (RFC 7644 3.12 invalidSyntax), not dropped.
# (`id` and `meta` are read-only: RFC 7643 2.2 says ignore them, and the api does.)
SCIM_MASS_ASSIGNMENT = MassAssignment(
    {
        "tenant": FABRIKAM,
        "tenantId": FABRIKAM,
        "tid": FABRIKAM,
        "roles": [{"value": "Tasks.Admin"}],
        "groups": [{"value": EVERYONE_AT_CONTOSO}],
        "owner": "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b",
        "emails": [{"value": "alice@contoso.test"}],
    },
    SCIM_INVALID_SYNTAX,
)
SCIM_PATCH_MASS_ASSIGNMENT = (
    MassAssignment(
        {"tenant": FABRIKAM, "roles": [{"value": "Tasks.Admin"}], "groups": [{"value": EVERYONE_AT_CONTOSO}]},
        SCIM_INVALID_PATH,
        _patch_operation,
    ),
    MassAssignment(
        {"externalId": "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912", "id": "00000000-0000-4000-8000-000000000000"},
        SCIM_MUTABILITY,
        _patch_operation,
    ),
)


@dataclass(frozen=True)
class Objects:
    """What an `{id}` segment names: POST `path` makes one (`new()` a fresh body), GET `path` lists them."""

    path: str
    new: Callable[[], Body]
    media_type: str = JSON


def _scim_user() -> Body:
    # A person nobody else in the tests is: deactivating or deleting them must touch no one's data.
    oid = str(uuid.uuid4())
    return {"schemas": [SCIM_USER], "externalId": oid, "userName": f"matrix-{oid[:8]}@contoso.test"}


def _user() -> Body:
    oid = str(uuid.uuid4())
    return {"object_id": oid, "user_name": f"matrix-{oid[:8]}@contoso.test"}


TASKS = Objects("/tasks", lambda: {"title": "owned by alice"})
RECORDS = Objects("/records", lambda: {"title": "owned by alice"})
SCIM_USERS = Objects("/scim/v2/Users", _scim_user, SCIM)
USERS = Objects("/users", _user)

# The body of a call: a fixed one, or one made from the object the path names (None: no object).
BodyOf = Body | Callable[[Body | None], Body] | None


@dataclass(frozen=True)
class Route:
    service: Literal["api", "downstream-api"]
    method: str
    path: str  # as served; a "{...}" segment names an object of `objects`, made fresh per call
    accepts: tuple[str, ...]  # scopes (delegated) or app roles (app-only), any one of them
    token: Literal["delegated", "app-only"] = "delegated"
    body: BodyOf = None
    ok: int = 200
    # The service's other permissions, none of which is enough here (for the wrong-permission case).
    wrong: tuple[str, ...] = field(default=())
    # Delegated: app roles the signed-in user must also be assigned (one of them), besides a scope.
    user_roles: tuple[str, ...] = ()
    # What the route's objects are; default: the service's own (tasks at the api, records downstream).
    objects: Objects | None = None
    # Fields a body must not set here; default for a route with a body: MASS_ASSIGNMENT.
    mass: tuple[MassAssignment, ...] | None = None
    # Authentication contexts a sensitive route needs in `acrs` (step-up; tests/e2e/test_step_up.py attacks it).
    contexts: tuple[str, ...] = ()

    @property
    def object_param(self) -> str | None:
        start = self.path.find("{")
        return self.path[start + 1 : self.path.index("}")] if start >= 0 else None

    @property
    def store(self) -> Objects:
        return self.objects or (TASKS if self.service == "api" else RECORDS)

    @property
    def media_type(self) -> str:
        return self.store.media_type

    @property
    def mass_assignments(self) -> tuple[MassAssignment, ...]:
        if self.mass is not None:
            return self.mass
        return (MASS_ASSIGNMENT,) if self.body is not None else ()

    def body_for(self, obj: Body | None) -> Body | None:
        return self.body(obj) if callable(self.body) else self.body

    @property
    def id(self) -> str:
        return f"{self.service} {self.method} {self.path}"


def _scim_replacement(user: Body | None) -> Body:
    # PUT keeps the key (externalId), changes the rest.
    assert user is not None
    return {"schemas": [SCIM_USER], "externalId": user["externalId"], "userName": "renamed-" + user["userName"]}


def _fresh(_: Body | None) -> Body:
    return SCIM_USERS.new()


def _fresh_user(_: Body | None) -> Body:
    return USERS.new()


SCIM_RENAME = {"schemas": [SCIM_PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "Matrix"}]}


def _scim(method: str, path: str, **more: Any) -> Route:
    """An api SCIM route: app-only, app role Users.Provision, on SCIM users."""
    return Route(
        "api",
        method,
        path,
        ("Users.Provision",),
        token="app-only",
        wrong=("Tasks.Report.All",),
        objects=SCIM_USERS,
        **more,
    )


def _users(method: str, path: str, **more: Any) -> Route:
    """A downstream-api provisioned-user route: app-only, app role Users.Manage (the api's own)."""
    return Route(
        "downstream-api",
        method,
        path,
        ("Users.Manage",),
        token="app-only",
        wrong=("Records.Report.All",),
        objects=USERS,
        **more,
    )


ROUTES = [
    # -- api ----------------------------------------------------------------------------------
    Route("api", "GET", "/me", TASKS_READ, wrong=("Tasks.Read.All",)),
    Route("api", "GET", "/me/groups", TASKS_READ, wrong=("Tasks.Read.All",)),
    Route("api", "GET", "/tasks", TASKS_READ, wrong=("Tasks.Read.All",)),
    Route("api", "POST", "/tasks", TASKS_WRITE, body={"title": "matrix"}, ok=201, wrong=("Tasks.Read",)),
    Route("api", "GET", "/tasks/shared", TASKS_READ, wrong=("Tasks.Read.All",)),
    Route("api", "GET", "/tasks/{task_id}", TASKS_READ, wrong=("Tasks.Read.All",)),
    Route("api", "PATCH", "/tasks/{task_id}", TASKS_WRITE, body={"done": True}, wrong=("Tasks.Read",)),
    Route("api", "DELETE", "/tasks/{task_id}", TASKS_WRITE, ok=204, wrong=("Tasks.Read",)),
    Route("api", "DELETE", "/tasks", TASKS_WRITE, ok=204, wrong=("Tasks.Read",), contexts=STEP_UP),
    Route(
        "api",
        "PUT",
        "/tasks/{task_id}/share",
        TASKS_WRITE,
        body={"group_id": EVERYONE_AT_CONTOSO},
        wrong=("Tasks.Read",),
        contexts=STEP_UP,
    ),
    # Needs an administrator's consent (the chain's tenant has given it), and a scope alone is enough.
    Route("api", "GET", "/org/tasks", ("Tasks.Read.All",), wrong=TASKS_READ),
    Route(
        "api",
        "GET",
        "/admin/tasks/summary",
        TASKS_READ,
        user_roles=("Tasks.Admin",),
        wrong=("Tasks.Read.All",),
        contexts=STEP_UP,
    ),
    Route("api", "GET", "/reports/tenant", ("Tasks.Report.All",), token="app-only", wrong=("Users.Provision",)),
    _scim("POST", "/scim/v2/Users", body=_fresh, ok=201, mass=(SCIM_MASS_ASSIGNMENT,)),
    _scim("GET", "/scim/v2/Users"),
    _scim("GET", "/scim/v2/Users/{user_id}"),
    _scim("PUT", "/scim/v2/Users/{user_id}", body=_scim_replacement, mass=(SCIM_MASS_ASSIGNMENT,)),
    _scim("PATCH", "/scim/v2/Users/{user_id}", body=SCIM_RENAME, mass=SCIM_PATCH_MASS_ASSIGNMENT),
    _scim("DELETE", "/scim/v2/Users/{user_id}", ok=204),
    # -- downstream-api -----------------------------------------------------------------------
    Route("downstream-api", "GET", "/me", RECORDS_READ, wrong=("Tasks.ReadWrite",)),
    Route("downstream-api", "GET", "/me/groups", RECORDS_READ, wrong=("Tasks.ReadWrite",)),
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
    Route("downstream-api", "DELETE", "/records", RECORDS_WRITE, ok=204, wrong=("Records.Read",), contexts=STEP_UP),
    Route(
        "downstream-api",
        "PUT",
        "/records/{record_id}/share",
        RECORDS_WRITE,
        body={"group_id": EVERYONE_AT_CONTOSO},
        wrong=("Records.Read",),
        contexts=STEP_UP,
    ),
    Route("downstream-api", "GET", "/org/records", ("Records.Read.All",), wrong=RECORDS_READ),
    Route(
        "downstream-api",
        "GET",
        "/admin/records/summary",
        RECORDS_READ,
        user_roles=("Records.Admin",),
        wrong=("Records.Read.All",),
        contexts=STEP_UP,
    ),
    Route(
        "downstream-api", "GET", "/reports/tenant", ("Records.Report.All",), token="app-only", wrong=("Users.Manage",)
    ),
    _users("POST", "/users", body=_fresh_user, ok=201),
    _users("GET", "/users"),
    _users("GET", "/users/{user_id}"),
    _users("PATCH", "/users/{user_id}", body={"display_name": "Matrix"}),
    _users("DELETE", "/users/{user_id}", ok=204),
]

DELEGATED = [r for r in ROUTES if r.token == "delegated"]
APP_ONLY = [r for r in ROUTES if r.token == "app-only"]
# Every app role and user role either API defines: held together, still not a scope.
ALL_ROLES = sorted({"Tasks.Admin", "Records.Admin", *(role for r in APP_ONLY for role in (*r.accepts, *r.wrong))})
