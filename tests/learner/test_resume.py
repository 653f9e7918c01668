"""Stop after step k, resume: the data order, the step counter and the weights continue exactly (local mode)."""

from __future__ import annotations

import pyarrow as pa
import pytest
import torch

from limr.events.io import list_event_keys, read_events_object
from limr.learner.checkpoint import latest_checkpoint, read_extra, read_full
from limr.learner.config import load_config
from limr.learner.worker import run_local
from limr.store import open_store
from tests.learner.conftest import write_config


def _events(store, run_id) -> dict[int, list[tuple[int, str, int]]]:
    """step -> [(epoch, prompt_id, sample)] in written order."""
    tables = [read_events_object(store, k) for k in list_event_keys(store, run_id)]
    t = pa.concat_tables(tables).to_pydict()
    out: dict[int, list[tuple[str, int]]] = {}
    for step, epoch, pid, s in zip(t["step"], t["epoch"], t["prompt_id"], t["sample"], strict=True):
        out.setdefault(step, []).append((epoch, pid, s))
    return out


def _run(cfg_path, store_uri, run_id, max_steps, resume=False):
    cfg = load_config(cfg_path, {"run.run_id": run_id, "run.store": store_uri, "run.max_steps": max_steps})
    key = latest_checkpoint(open_store(store_uri), run_id) if resume else None
    return run_local(cfg, key)


def test_resume_continues_step_data_order_and_weights(tmp_path, tiny_model, synthetic_pool):
    train, _ = synthetic_pool  # 12 prompts, 4 per step: 3 steps per epoch
    cfg_path = write_config(
        tmp_path / "c.yaml", tiny_model, train, run={"seed": 3, "epochs": 2, "checkpoint_every": 2}
    )
    store_uri = str(tmp_path / "store")
    store = open_store(store_uri)

    full = _run(cfg_path, store_uri, "full", max_steps=4)
    first = _run(cfg_path, store_uri, "split", max_steps=2)
    assert first["train/step"] == 2
    assert latest_checkpoint(store, "split").endswith("0000000002/")
    resumed = _run(cfg_path, store_uri, "split", max_steps=4, resume=True)
    assert resumed["train/step"] == 4

    a, b = _events(store, "full"), _events(store, "split")
    assert sorted(a) == sorted(b) == [0, 1, 2, 3]  # step counter continued, no step repeated or skipped
    assert a == b  # same prompts in the same order, same samples per prompt, across the epoch boundary
    assert len({pid for s in (0, 1, 2) for _, pid, _ in a[s]}) == 12  # epoch 0 covered the pool once
    assert {e for e, _, _ in a[3]} == {1} and all(len(a[s]) == 8 for s in a)  # 4 prompts x 2 samples

    # same rewards and same final weights: the resumed run is the uninterrupted run
    assert resumed["train/reward_mean"] == pytest.approx(full["train/reward_mean"])
    wa = read_full(store, latest_checkpoint(store, "full"))
    wb = read_full(store, latest_checkpoint(store, "split"))
    for name, t in wa["actor"].items():
        torch.testing.assert_close(wb["actor"][name], t, msg=lambda m, n=name: f"actor {n}: {m}")
    for name, t in wa["critic"].items():
        torch.testing.assert_close(wb["critic"][name], t)
    steps = [read_extra(store, latest_checkpoint(store, r))["trainer"]["optimizer_step"] for r in ("full", "split")]
    assert steps == [8, 8]


def test_resume_refuses_a_different_pool(tmp_path, tiny_model, synthetic_pool):
    from limr.learner.setup import ResumeError

    train, test = synthetic_pool
    cfg_path = write_config(tmp_path / "c.yaml", tiny_model, train, run={"checkpoint_every": 1})
    store_uri = str(tmp_path / "store")
    _run(cfg_path, store_uri, "r1", max_steps=1)
    other = write_config(tmp_path / "d.yaml", tiny_model, test, run={"checkpoint_every": 1})
    with pytest.raises(ResumeError, match="different prompt pool"):
        _run(other, store_uri, "r1", max_steps=2, resume=True)


def test_greso_skips_before_rollout_and_resumes_with_its_state(tmp_path, tiny_model, synthetic_pool):
    """curation.mode greso (local mode): the untrained model solves nothing, so every group is all wrong and GRESO
    starts skipping the prompts it has seen; a run resumed from its step-2 checkpoint restores the skip state and
    makes the same choices as the uninterrupted run."""
    from limr.events.metrics import read_run_metrics

    train, _ = synthetic_pool
    cfg_path = write_config(
        tmp_path / "c.yaml", tiny_model, train, run={"seed": 3, "epochs": 2, "checkpoint_every": 2},
        curation={"mode": "greso", "max_rounds": 3},
    )  # fmt: skip
    store_uri = str(tmp_path / "store")
    store = open_store(store_uri)
    _run(cfg_path, store_uri, "full", max_steps=4)
    _run(cfg_path, store_uri, "split", max_steps=2)
    assert read_extra(store, latest_checkpoint(store, "split"))["loop"]["greso"]["hard_streak"]
    _run(cfg_path, store_uri, "split", max_steps=4, resume=True)
    a, b = read_run_metrics(store, "full"), read_run_metrics(store, "split")
    keys = ("curation/greso_skipped", "curation/greso_p_hard", "rollout/generated_prompts")
    assert [[m[k] for k in keys] for m in a] == [[m[k] for k in keys] for m in b]
    assert sum(m["curation/greso_skipped"] for m in a) > 0
    assert a[-1]["curation/greso_p_hard"] < 0.5  # all-wrong groups above the 2/3 x 25% target: skip more
    assert _events(store, "full") == _events(store, "split")


def test_evaluations_record_which_held_out_problems_were_solved(tmp_path, tiny_model, synthetic_pool):
    """Every evaluation (step 0 and the end) writes runs/{run}/heldout/{step}.json; its mean is eval/accuracy."""
    from limr.events.heldout import read_heldout
    from limr.events.metrics import read_run_metrics

    train, test = synthetic_pool
    cfg_path = write_config(
        tmp_path / "c.yaml", tiny_model, train, data={"prompts": str(train), "eval_prompts": str(test)}
    )
    store_uri = str(tmp_path / "store")
    store = open_store(store_uri)
    _run(cfg_path, store_uri, "ev", max_steps=1)
    m = read_run_metrics(store, "ev")[-1]
    for step, acc in ((0, m["eval/accuracy_initial"]), (1, m["eval/accuracy"])):
        rec = read_heldout(store, "ev", step)
        assert rec is not None and len(rec["prompt_ids"]) == len(rec["correct"]) == 4
        assert rec["correct"].count("1") / 4 == pytest.approx(acc)
