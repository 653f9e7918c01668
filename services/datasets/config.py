"""Settings of the curated-dataset query service (`LIMR_*` environment variables or CLI flags)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatasetsSettings(BaseSettings):
    """Configuration of `limr serve datasets`."""

    model_config = SettingsConfigDict(env_prefix="LIMR_", extra="ignore", frozen=True)

    # Object store holding runs/, datasets/ and the scorer's state (path, file://, s3://bucket/prefix).
    store: str = "./limr-data"
    # Listen address and port.
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Bearer token required for writes (POST publish). Unset: writes are refused (403). In Kubernetes it
    # comes from a Secret (env LIMR_API_TOKEN).
    api_token: SecretStr | None = None
    # Optional bearer token for reads; unset: reads are open. The write token is accepted for reads too.
    read_token: SecretStr | None = None
    # Key prefix of the scorer's state (checkpoints, status, score snapshots); must match the scorer's.
    state_prefix: str = "scorer"
    # Largest page size a client may ask for.
    max_page_size: int = Field(default=1000, ge=1, le=100_000)

    @field_validator("api_token", "read_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        """An empty variable (a Secret key present but blank) must not become an empty, guessable token."""
        return None if isinstance(v, str) and not v.strip() else v


@lru_cache
def get_settings() -> DatasetsSettings:
    """Settings from the environment, read once on first use (never at import time)."""
    return DatasetsSettings()
