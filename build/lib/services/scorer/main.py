"""The scorer service: a FastAPI app (health, readiness, metrics, status) around the ingestion thread."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from limr.store import open_store
from services.scorer.config import ScorerSettings, get_settings
from services.scorer.ingest import Ingestor
from services.scorer.notify import start_notifications
from services.scorer.routers import health, status


def create_app(settings: ScorerSettings | None = None) -> FastAPI:
    """Build the app; the ingestion thread starts with the app's lifespan and stops with it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or get_settings()
        store = open_store(cfg.store)
        ingestor = Ingestor(store, cfg)
        app.state.ingestor = ingestor
        thread = threading.Thread(target=ingestor.run, name="limr-scorer-ingest", daemon=True)
        thread.start()
        if cfg.notifications == "auto":
            start_notifications(store, ingestor.wake, ingestor.stop_event)
        try:
            yield
        finally:
            ingestor.stop_event.set()
            ingestor.wake.set()
            thread.join(timeout=30)
            store.close()

    app = FastAPI(title="limr scorer", version="1", lifespan=lifespan)
    app.include_router(health.router)
    app.include_router(status.router)
    return app
