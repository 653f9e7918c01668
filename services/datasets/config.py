"""Settings of the curated-dataset query service (`LIMR_*` environment variables or CLI flags)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from limr.secrets import env_secret

# Token fields that may also come from a file named by LIMR_<FIELD>_FILE (the chart mounts Secrets as files).
_SECRET_FIELDS = ("api_token", "read_token")


class _SecretFiles(PydanticBaseSettingsSource):
    """The tokens from LIMR_API_TOKEN / LIMR_READ_TOKEN or the files their `_FILE` twins name (limr.secrets)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return env_secret(f"LIMR_{field_name.upper()}"), field_name, False

    def __call__(self) -> dict[str, Any]:
        found = {name: env_secret(f"LIMR_{name.upper()}") for name in _SECRET_FIELDS}
        return {name: value for name, value in found.items() if value is not None}


class DatasetsSettings(BaseSettings):
    """Configuration of `limr serve datasets`."""

    model_config = SettingsConfigDict(env_prefix="LIMR_", extra="ignore", frozen=True)

    # Object store holding runs/, datasets/ and the scorer's state (path, file://, s3://bucket/prefix).
    store: str = "./limr-data"
    # Listen address and port.
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Bearer token required for writes (POST publish). Unset: writes are refused (403). In Kubernetes it
    # comes from a Secret mounted as a file (LIMR_API_TOKEN_FILE; LIMR_API_TOKEN works too).
    api_token: SecretStr | None = None
    # Optional bearer token for reads (LIMR_READ_TOKEN or LIMR_READ_TOKEN_FILE); unset: reads are open. The
    # write token is accepted for reads too.
    read_token: SecretStr | None = None
    # Key prefix of the scorer's state (checkpoints, status, score snapshots); must match the scorer's.
    state_prefix: str = "scorer"
    # Largest page size a client may ask for.
    max_page_size: int = Field(default=1000, ge=1, le=100_000)
    # Seconds a listing of every run (/v1/runs) or every dataset (/v1/datasets) is reused before the store is
    # listed again (bounded staleness: a new run or another process's publish shows up within this); 0: never
    # reused. A publish through this server is listed at once.
    listing_ttl_s: float = Field(default=5.0, ge=0, le=3600)

    @field_validator("api_token", "read_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        """An empty variable (a Secret key present but blank) must not become an empty, guessable token."""
        return None if isinstance(v, str) and not v.strip() else v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the token files after explicit arguments; env_secret refuses LIMR_X and LIMR_X_FILE set together
        return init_settings, _SecretFiles(settings_cls), env_settings, dotenv_settings, file_secret_settings


@lru_cache
def get_settings() -> DatasetsSettings:
    """Settings from the environment, read once on first use (never at import time)."""
    return DatasetsSettings()
