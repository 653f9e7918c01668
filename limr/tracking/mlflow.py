"""MLflow tracking through `MlflowClient` (explicit run ids: several runs in one process never share the
global "active run"). Works with a tracking server URL or a local store: a directory holds `mlflow.db` (SQLite;
MLflow 3 refuses its old plain-file backend by default) and `artifacts/`; `mlflow ui --backend-store-uri
sqlite:///DIR/mlflow.db` shows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from limr.tracking.base import TrackerInfo, flatten, numeric

_PARAM_MAX = 6000  # MLflow's limit on a param value's length


class MlflowTracker:
    def __init__(self, uri: str, run_id: str, experiment: str, tags: dict[str, str]) -> None:
        from mlflow.tracking import MlflowClient

        artifacts = None
        if ":" not in uri or uri.startswith("file:"):  # a local directory: SQLite store + artifact directory
            root = Path(uri.removeprefix("file://").removeprefix("file:")).resolve()
            root.mkdir(parents=True, exist_ok=True)
            uri, artifacts = f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        exp = self.client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(experiment, artifacts)
        # a resumed limr run continues its tracker run: one limr run id, one MLflow run
        found = self.client.search_runs([exp_id], filter_string=f"tags.`limr.run_id` = '{run_id}'", max_results=1)
        if found:
            self.run_id = found[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.run_id = self.client.create_run(exp_id, run_name=run_id, tags=tags).info.run_id
        self.info = TrackerInfo(backend="mlflow", uri=uri, run_id=self.run_id)

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        flat = flatten(params)
        items = [Param(k, str(v)[:_PARAM_MAX]) for k, v in sorted(flat.items())]
        existing = self.client.get_run(self.run_id).data.params
        items = [p for p in items if p.key not in existing]  # params are immutable in MLflow (a resume)
        for i in range(0, len(items), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = [Metric(k, v, now, step) for k, v in sorted(numeric(metrics).items())]
        for i in range(0, len(values), 1000):
            self.client.log_batch(self.run_id, metrics=values[i : i + 1000])

    def log_image(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path="plots")

    def close(self, failed: bool = False) -> None:
        self.client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")
