"""Every tier's process, once started, keeps the garbage collector off what lives as long as it does."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from zerotrust.serve import YOUNG_COLLECTION_THRESHOLD, settled


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_what_the_lifespan_built_is_frozen_out_of_collections_and_the_young_collected_less_often(
    collector: None,
) -> None:
    built: dict[str, object] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        built["clients"] = [[n] for n in range(100)]
        built["frozen_before_it"] = gc.get_freeze_count()
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/")
    async def root() -> dict[str, int]:
        return {"frozen": gc.get_freeze_count()}

    gc.unfreeze()
    with TestClient(settled(app)) as client:
        # Frozen after the lifespan built its clients, not before: they are the process's to keep.
        assert built["frozen_before_it"] == 0
        assert client.get("/").json()["frozen"] > len(built["clients"])  # type: ignore[arg-type]
        assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD
        # Frozen objects are in no generation a collection walks.
        walked = {id(o) for o in gc.get_objects()}
        assert not {id(c) for c in built["clients"]} & walked  # type: ignore[attr-defined]


def test_an_app_without_a_lifespan_of_its_own_starts_and_is_settled(collector: None) -> None:
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, int]:
        return {"frozen": gc.get_freeze_count()}

    gc.unfreeze()
    with TestClient(settled(app)) as client:
        assert client.get("/").json()["frozen"] > 0
