"""Checkpoint retention (`run.keep_checkpoints`): the newest complete checkpoints stay, older ones go only after a
newer pointer is written, the one latest.json names never goes; the same on local disk and S3."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from limr.cli.main import app
from limr.learner.checkpoint import latest_checkpoint, prune_checkpoints, read_full, save_checkpoint
from limr.learner.dist import DistCtx
from limr.store import open_store
from tests.learner.conftest import write_config


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    uri = str(tmp_path / "store") if request.param == "local" else request.getfixturevalue("s3_uri")
    return open_store(uri)


def _steps(store, run="r") -> list[int]:
    prefix = f"runs/{run}/checkpoints/"
    return sorted({int(k[len(prefix) :].split("/")[0]) for k in store.list_keys(prefix) if k[len(prefix)].isdigit()})


def _save(store, step: int, keep: int, run="r") -> str:
    tensors = {"w": torch.full((4,), float(step))}
    return save_checkpoint(store, run, step, tensors, {"step": step}, DistCtx(), keep=keep)


def test_keeps_the_newest_complete_checkpoints(store):
    for step in range(1, 6):
        _save(store, step, keep=2)
        assert _steps(store) == list(range(max(1, step - 1), step + 1))
    assert latest_checkpoint(store, "r").endswith("/0000000005/")
    assert float(read_full(store, latest_checkpoint(store, "r"))["w"][0]) == 5.0


def test_the_pointed_checkpoint_survives_and_crashed_leftovers_go(store):
    for step in (1, 2, 3):
        _save(store, step, keep=0)  # 0: keep all
    store.put("runs/r/checkpoints/0000000009/__0_0.distcp", b"half a save that crashed before its pointer")
    assert prune_checkpoints(store, "r", 1) == [1, 2, 9]
    assert _steps(store) == [3]
    _save(store, 2, keep=1)  # a run resumed from an older checkpoint: the new pointer names 2, and 3 is newer
    assert _steps(store) == [2]
    assert prune_checkpoints(open_store(store.uri), "other", 1) == []  # no pointer: nothing is touched


def test_nothing_is_pruned_when_the_new_pointer_is_not_written(store, monkeypatch):
    for step in (1, 2):
        _save(store, step, keep=2)
    real_put = type(store).put

    def failing_put(self, key, data, content_type="application/octet-stream"):
        if key.endswith("latest.json"):
            raise OSError("store went away")
        return real_put(self, key, data, content_type)

    monkeypatch.setattr(type(store), "put", failing_put)
    with pytest.raises(OSError):
        _save(store, 3, keep=2)
    monkeypatch.undo()
    assert latest_checkpoint(store, "r").endswith("/0000000002/")
    assert {1, 2} <= set(_steps(store))  # both complete ones are still there


@pytest.mark.slow  # a 3-step local training run
def test_bf16_run_leaves_keep_checkpoints_of_fp32_masters(tmp_path, tiny_model, synthetic_pool):
    """The issue's "must show": a bf16 local run, a checkpoint every step, keep 2 -> the last two, fp32 masters."""
    train, _ = synthetic_pool
    cfg = write_config(tmp_path / "tiny.yaml", tiny_model, train, run={"checkpoint_every": 1, "keep_checkpoints": 2})
    cfg.write_text(cfg.read_text().replace("model:\n", "model:\n  dtype: bfloat16\n"))
    uri = str(tmp_path / "store")
    args = ["train", "--config", str(cfg), "--store", uri, "--local", "--run-id", "bf", "--max-steps", "3"]
    res = CliRunner().invoke(app, [*args, "--log-file", str(tmp_path / "train.log")])
    assert res.exit_code == 0, res.output
    store = open_store(uri)
    assert _steps(store, "bf") == [2, 3]
    full = read_full(store, latest_checkpoint(store, "bf"))
    assert {v.dtype for v in full["actor"].values()} == {torch.float32}
    assert {v.dtype for v in full["critic"].values()} == {torch.float32}
