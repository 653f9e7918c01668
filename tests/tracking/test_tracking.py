"""Trackers: MLflow against a real tracking server the suite starts (and a local file store), TensorBoard
event files read back record by record; specs and config errors."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from limr.tracking import TrackingError, flatten, open_tracker, parse_spec
from tests.support.mlflow_server import mlflow_server


@pytest.fixture(scope="module")
def mlflow_url():
    with mlflow_server() as url:
        yield url


def _png(tmp_path: Path) -> Path:
    from limr.view.plots import pyplot, save_png

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(2, 2), dpi=50)
    ax.plot([0, 1], [0, 1])
    path = save_png(fig, tmp_path / "curve.png")
    plt.close(fig)
    return path


def test_specs_and_errors():
    assert parse_spec("tensorboard:runs/tb") == ("tensorboard", "runs/tb")
    assert parse_spec("mlflow:http://h:5000") == ("mlflow", "http://h:5000")
    assert parse_spec("mlflow")[1].endswith("mlruns")  # a local file store by default
    for bad in ("wandb:x", "tensorboard", "nope"):
        with pytest.raises(TrackingError):
            parse_spec(bad)
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": 1, "a.c": "[1, 2]", "d": None}

    from limr.learner.config import ConfigError, LearnerConfig

    with pytest.raises(ValueError, match="tracking"):
        LearnerConfig.model_validate({"model": {"actor": "m"}, "metrics": {"tracking": "wandb:x"}})
    assert ConfigError  # the CLI turns the validation error into a ConfigError naming metrics.tracking


@pytest.mark.slow  # the server takes up to a minute to start on a busy machine
def test_mlflow_server_run_params_metrics_plots_and_resume(mlflow_url, tmp_path):
    from mlflow.tracking import MlflowClient

    t = open_tracker(f"mlflow:{mlflow_url}", "run-x", experiment="limr-test")
    t.log_params({"rollout": {"samples_per_prompt": 8}, "name": "tiny"})
    for step in (1, 2, 3):
        t.log_metrics({"train/reward_mean": 0.1 * step, "n": step, "bad": float("nan"), "s": "x"}, step)
    t.log_image(_png(tmp_path))
    t.close()
    client = MlflowClient(mlflow_url)
    run = client.get_run(t.info.run_id)
    assert run.info.run_name == "run-x" and run.data.tags["limr.run_id"] == "run-x"
    assert run.info.status == "FINISHED" and run.data.params["rollout.samples_per_prompt"] == "8"
    history = client.get_metric_history(t.info.run_id, "train/reward_mean")
    assert [(m.step, round(m.value, 6)) for m in history] == [(1, 0.1), (2, 0.2), (3, 0.3)]
    assert "bad" not in run.data.metrics and "s" not in run.data.metrics
    assert [a.path for a in client.list_artifacts(t.info.run_id, "plots")] == ["plots/curve.png"]
    # the same limr run id continues its tracker run (a resumed training run): one id, one MLflow run
    again = open_tracker(f"mlflow:{mlflow_url}", "run-x", experiment="limr-test")
    again.log_params({"rollout": {"samples_per_prompt": 8}, "extra": 1})
    again.close(failed=True)
    assert again.info.run_id == t.info.run_id and client.get_run(t.info.run_id).info.status == "FAILED"


def test_mlflow_local_store(tmp_path):
    from mlflow.tracking import MlflowClient

    t = open_tracker(f"mlflow:{tmp_path / 'mlruns'}", "local-run")
    t.log_metrics({"eval/accuracy": 0.5}, 1)
    t.log_image(_png(tmp_path))
    t.close()
    assert t.info.uri == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert MlflowClient(t.info.uri).get_run(t.info.run_id).data.metrics == {"eval/accuracy": 0.5}
    assert list((tmp_path / "mlruns" / "artifacts").rglob("curve.png"))  # artifacts next to the database


def _events(logdir: Path) -> list:
    """Every Event of the TensorBoard files under `logdir` (TFRecord: length, crc, data, crc)."""
    from tensorboardX.proto import event_pb2

    out = []
    for path in sorted(logdir.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        i = 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i : i + 8])
            ev = event_pb2.Event()
            ev.ParseFromString(data[i + 12 : i + 12 + n])
            out.append(ev)
            i += 12 + n + 4
    return out


def test_tensorboard_scalars_config_and_images(tmp_path):
    t = open_tracker(f"tensorboard:{tmp_path / 'tb'}", "tb-run")
    t.log_params({"optim": {"actor_lr": 1e-6}})
    for step in (1, 2):
        t.log_metrics({"train/kl": 0.01 * step}, step)
    t.log_image(_png(tmp_path))
    t.close()
    assert t.info.run_id == "tb-run" and (tmp_path / "tb" / "tb-run").is_dir()
    values = [(e.step, v.tag, v) for e in _events(tmp_path / "tb") for v in e.summary.value]
    kl = [(s, round(v.simple_value, 6)) for s, tag, v in values if tag == "train/kl"]
    assert kl == [(1, 0.01), (2, 0.02)]
    assert any(tag == "plots/curve" and v.image.height == 100 for _, tag, v in values)
    assert any(tag.startswith("config") and b"optim.actor_lr" in v.tensor.string_val[0] for _, tag, v in values)
    assert np.isfinite(kl[0][1])


def test_study_tracking_config_and_summary_run(tmp_path):
    from mlflow.tracking import MlflowClient

    from limr.experiment.config import load_experiment
    from limr.experiment.tracking import log_study, tracked
    from tests.conftest import REPO

    cfg = load_experiment(REPO / "configs" / "experiment-tiny.yaml", quick=True)
    spec = f"mlflow:{tmp_path / 'mlruns'}"
    study = tracked(cfg, spec)
    assert study.learner_overrides["metrics.tracking"] == spec and study.learner_overrides["name"] == cfg.name
    assert tracked(cfg, None) is cfg
    out = tmp_path / "out"
    out.mkdir()
    _png(tmp_path).rename(out / "accuracy_vs_step.png")
    summary = {"steps": 12, "arms": [{"name": "full", "final_mean": 0.4, "final_std": 0.02}], "lim": {"selected": 9}}
    info = log_study(spec, study, out, summary)
    run = MlflowClient(info.uri).get_run(info.run_id)
    assert run.info.run_name == f"{cfg.name}-study" and run.data.metrics["arms/full/final_mean"] == 0.4
    assert run.data.metrics["lim/selected"] == 9 and run.data.params["learner_overrides.metrics.tracking"] == spec
    assert [a.path for a in MlflowClient(info.uri).list_artifacts(info.run_id, "plots")] == [
        "plots/accuracy_vs_step.png"
    ]
