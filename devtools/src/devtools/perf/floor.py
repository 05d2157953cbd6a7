"""The floor: the chain's three hops with no Zero Trust at all, for `make bench` to compare against. Bench-only.

Same framework, server, TLS, hop client (zerotrust.hops), database engine and query, and a page rendered
from a template, but no token, no session, no validation, no authorization. Never a switch in the real
services: this is separate code that shares only what carries no security decision.

    python -m devtools.perf.floor web|api|downstream PORT NEXT_URL_OR_DATABASE_URL
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

from downstream_api.db import Database, PagedQuery, Record, make_engine
from downstream_api.routes.records import RecordOut
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from zerotrust.hops import hop_session
from zerotrust.paging import DEFAULT_TOP, Page, Paging, paged
from zerotrust.serve import serve

TENANT, OWNER = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def _page(request: Request, items: list[dict[str, Any]]) -> Response:
    # The web app's own template and layout, as its tasks page renders them on `make run`: the same bytes to
    # send, but for ids, times and the form token (perf/run.py checks that before it measures).
    from web.pages import demonstrated, templates

    tasks = [SimpleNamespace(path_id=t["id"], shared_with_group=None, **t) for t in items]
    user = SimpleNamespace(name="Alice Adams", username="alice@contoso.test", account_type=None, country=None)
    context = {"tasks": tasks, "csrf_token": "x" * 43, "max_title": 200, "user": user, "display_name": user.name}
    # `make run` shows the attack lab's link and the guidance the page demonstrates.
    context |= {"attack_lab": True, "demonstrates": demonstrated("/tasks")}
    response: Response = templates.TemplateResponse(request, "tasks.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response


# The query downstream-api's list runs (built once, as there: building a SELECT costs more than running it),
# without the caller's tenant and object id from a token: the floor's are fixed.
_OWNED = PagedQuery(select(Record).where(Record.tenant_id == TENANT, Record.owner_oid == OWNER))


def _rows(session: Session, db: Database) -> list[dict[str, Any]]:
    # As downstream-api's unit of work does: on PostgreSQL, row-level security shows the declared tenant only.
    db.declare_tenant(session, TENANT)
    rows = _OWNED.rows(session, Page(DEFAULT_TOP))
    return [{"id": r.id, "title": r.title, "done": r.done, "created_at": r.created_at.isoformat()} for r in rows]


def _seed(session: Session, db: Database, count: int) -> None:
    # Made anew at each start (the floor's own tenant only): a database kept from an older floor lists the same.
    db.declare_tenant(session, TENANT)
    session.execute(delete(Record).where(Record.tenant_id == TENANT))
    now = dt.datetime.now(dt.UTC)
    for n in range(count):
        session.add(
            Record(
                id=str(uuid.uuid4()),
                tenant_id=TENANT,
                owner_oid=OWNER,
                title=f"task {n}",
                created_at=now + dt.timedelta(microseconds=n),  # listed in the order made, as the real ones are
            )
        )


def _models(session: Session, db: Database, page: Page) -> list[RecordOut]:
    db.declare_tenant(session, TENANT)
    return [RecordOut.of(r) for r in _OWNED.rows(session, page)]


# The real route's dependencies in shape only: each takes the request and decides nothing.
async def _caller(request: Request) -> str:
    return OWNER


async def _database(request: Request) -> Database:
    found: Database = request.app.state.floor_db
    return found


Caller = Annotated[str, Depends(_caller)]
FloorDatabase = Annotated[Database, Depends(_database)]


def downstream(database_url: str, seed: int, *, shaped: bool = False) -> FastAPI:
    """`shaped`: `GET /records` with the real route's shape and none of its checks (as many dependencies, the
    paging, the Link header on a Response parameter, pydantic models through a response model), so that
    make bench-instructions can tell FastAPI's share from the checks'."""
    if database_url.startswith("postgresql"):
        from azure.identity import ManagedIdentityCredential

        # The cluster admits tokens only: the floor connects as downstream-api does (its schema is there).
        db = Database(make_engine(database_url, credential=ManagedIdentityCredential()))
    else:
        db = Database(make_engine(database_url))
        Record.metadata.create_all(db.engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await db.run(_seed, db, seed)
        yield
        db.dispose()

    app = FastAPI(lifespan=lifespan)
    app.state.floor_db = db
    if shaped:

        @app.get("/records")
        async def shaped_records(owner: Caller, d: FloorDatabase, page: Paging, response: Response) -> list[RecordOut]:
            return paged(response, "/records", page, await d.run(_models, d, page))

        return app

    @app.get("/records")
    async def records() -> JSONResponse:
        return JSONResponse(await db.run(_rows, db))

    return app


def hop(next_url: str, path: str, render: bool) -> FastAPI:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with hop_session(next_url) as http:
            state["http"] = http
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/tasks")
    async def tasks(request: Request) -> Any:
        async with state["http"].get(path) as answer:
            items = await answer.json()
        return _page(request, items) if render else JSONResponse(items)

    return app


def main(argv: list[str]) -> None:
    tier, port, target = argv[0], int(argv[1]), argv[2]
    cert, key = Path(os.environ["FLOOR_TLS_CERT"]), Path(os.environ["FLOOR_TLS_KEY"])
    if tier == "downstream":
        app = downstream(target, int(os.environ.get("FLOOR_SEED", "5")))
    else:
        app = hop(target, "/records" if tier == "api" else "/tasks", render=tier == "web")
    # As `make run` serves each tier: HTTPS between tiers, plain http for the web on loopback.
    serve(
        app,
        f"floor-{tier}",
        "FLOOR",
        host="127.0.0.1",
        port=port,
        tls_cert=cert,
        tls_key=key,
        require_tls=tier != "web",
        log_level="warning",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
