"""The tracker interface, its spec and the value shaping every backend shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel


class TrackingError(ValueError):
    """A tracking spec that cannot be used (unknown backend, missing directory)."""


class TrackerInfo(BaseModel):
    """Where a run is tracked: recorded in run.json (`tracking`) so the store leads to the tracker."""

    backend: str  # mlflow or tensorboard
    uri: str  # tracking URI or log directory
    run_id: str  # the tracker's id of the run (MLflow run id; the TensorBoard run directory)


class Tracker(Protocol):
    info: TrackerInfo

    def log_params(self, params: dict[str, Any]) -> None:
        """The run's configuration (flattened `a.b.c` keys)."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Numeric metrics of one step (`train/reward_mean`, `eval/accuracy`, ...)."""

    def log_image(self, path: Path) -> None:
        """A PNG plot (the LIM picture)."""

    def close(self, failed: bool = False) -> None:
        """End the run (MLflow: FINISHED or FAILED)."""


def parse_spec(spec: str) -> tuple[str, str]:
    """`mlflow`, `mlflow:URI`, `tensorboard:DIR` -> (backend, target); the error names what is accepted."""
    backend, _, target = spec.partition(":")
    backend = backend.strip().lower()
    if backend == "mlflow":
        return backend, target or str(Path("mlruns").resolve())
    if backend == "tensorboard":
        if not target:
            raise TrackingError("--tracking tensorboard:DIR needs a directory (e.g. tensorboard:runs/tb)")
        return backend, target
    raise TrackingError(f"unknown tracking backend {spec!r}: use mlflow[:URI] or tensorboard:DIR")


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> `a.b.c` keys with scalar values (lists as text): what trackers store as params."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value if isinstance(value, str | int | float | bool) or value is None else str(value)
    return out


def numeric(metrics: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a metrics dict (trackers refuse NaN, strings and None)."""
    import math

    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
    }
