"""`python -m services.scorer`: the scorer with settings from the environment (LIMR_*)."""

from __future__ import annotations

import uvicorn

from services.scorer.config import get_settings
from services.scorer.main import create_app

if __name__ == "__main__":
    settings = get_settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
