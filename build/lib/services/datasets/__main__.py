"""`python -m services.datasets`: the query API with settings from the environment (LIMR_*)."""

from __future__ import annotations

import uvicorn

from services.datasets.config import get_settings
from services.datasets.main import create_app

if __name__ == "__main__":
    settings = get_settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
