"""Experiment trackers researchers already use: MLflow and TensorBoard, behind one small interface.

`--tracking mlflow[:URI]` (a tracking server URL, or a local file store: `./mlruns` by default) or
`--tracking tensorboard:DIR`. The tracker run is named after limr's run id and tagged with it, the same id
that names the run's objects in the store and labels its Prometheus series (`run`), and run.json records the
tracker's own run id, so each one leads to the others.
"""

from __future__ import annotations

from limr.tracking.base import Tracker, TrackerInfo, TrackingError, flatten, numeric, parse_spec

__all__ = ["Tracker", "TrackerInfo", "TrackingError", "flatten", "numeric", "open_tracker", "parse_spec"]


def open_tracker(spec: str, run_id: str, experiment: str = "limr", tags: dict[str, str] | None = None) -> Tracker:
    """Start (or, for an MLflow run of the same limr run id, continue) the tracker run of `run_id`."""
    backend, target = parse_spec(spec)
    tags = {"limr.run_id": run_id, **(tags or {})}
    if backend == "mlflow":
        from limr.tracking.mlflow import MlflowTracker

        return MlflowTracker(target, run_id, experiment, tags)
    from limr.tracking.tensorboard import TensorBoardTracker

    return TensorBoardTracker(target, run_id, tags)
