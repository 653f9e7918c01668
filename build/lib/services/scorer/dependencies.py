"""FastAPI dependencies of the scorer app: the running Ingestor (owned by the app's lifespan)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.scorer.ingest import Ingestor


def get_ingestor(request: Request) -> Ingestor:
    return request.app.state.ingestor


IngestorDep = Annotated[Ingestor, Depends(get_ingestor)]
