"""`limr train`: run id / store / resume resolution, errors that name the problem, a one-step local run."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from limr.cli.main import app
from limr.events.run import RunMeta, run_finished, write_run_meta
from limr.store import open_store
from tests.learner.conftest import write_config


def test_train_local_then_resume_and_refusals(tmp_path, tiny_model, synthetic_pool):
    train, _ = synthetic_pool
    cfg = write_config(tmp_path / "tiny.yaml", tiny_model, train, run={"checkpoint_every": 1})
    store = str(tmp_path / "store")
    runner = CliRunner()
    log_file = tmp_path / "train.log"
    base = ["train", "--config", str(cfg), "--store", store, "--local", "--log-file", str(log_file)]

    res = runner.invoke(app, [*base, "--run-id", "r1", "--max-steps", "1", "--summary", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["run_id"] == "r1" and summary["train/step"] == 1 and summary["n_samples"] == 8
    finished = run_finished(open_store(store), "r1")  # the learner's last object: the scorer publishes final
    assert finished is not None and finished.epochs == 1 and finished.model_extra["steps"] == 1

    res = runner.invoke(app, [*base, "--run-id", "r1", "--max-steps", "2"])
    assert res.exit_code == 2 and "run 'r1' already exists" in res.output and "--resume" in res.output

    # --resume without --run-id: the newest run of this config ("tiny") with a checkpoint... none is named tiny-*
    res = runner.invoke(app, [*base, "--resume", "--max-steps", "2"])
    assert res.exit_code == 2 and "no run of config 'tiny'" in res.output

    res = runner.invoke(app, [*base, "--run-id", "r1", "--resume", "--max-steps", "2"])
    assert res.exit_code == 0, res.output
    assert "resuming" in res.output and '"train/step": 2' in res.output
    # the terminal got the run line and the result; the learner's step log went to the file it named
    assert f"logs: {log_file}" in res.output and "limr.learner" not in res.output
    assert "step 2/2" in log_file.read_text()
    assert run_finished(open_store(store), "r1").model_extra["steps"] == 2

    # A run id that exists without any learner checkpoint (an imported run) is refused just the same.
    write_run_meta(open_store(store), RunMeta(run_id="imported"))
    res = runner.invoke(app, [*base, "--run-id", "imported", "--max-steps", "1"])
    assert res.exit_code == 2 and "run 'imported' already exists" in res.output


def test_train_errors_name_the_field(tmp_path, tiny_model, synthetic_pool):
    train, _ = synthetic_pool
    cfg = write_config(tmp_path / "bad.yaml", tiny_model, train, batch={"train_batch_size": 3})
    res = CliRunner().invoke(app, ["train", "--config", str(cfg), "--local", "--store", str(tmp_path / "s")])
    assert res.exit_code == 2
    assert "train_batch_size" in res.output
    good = write_config(tmp_path / "good.yaml", tiny_model, train)
    res = CliRunner().invoke(app, ["train", "--config", str(good), "--prompts", str(tmp_path / "nope.jsonl")])
    assert res.exit_code == 2 and "nope.jsonl" in res.output
