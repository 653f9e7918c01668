"""score_run: a run in the store (local and real S3) scored against a plain per-event loop; left-out reasons."""

from __future__ import annotations

import numpy as np
import pytest

from limr.algo.lim import fill_missing_epochs
from limr.events.io import PromptRecord, events_table, read_events_object, write_events, write_prompts
from limr.events.run import RunMeta, write_run_meta
from limr.scoring import EmptyRun, EpochCounts, RunNotFound, accumulate_run, score_run
from limr.store import ObjectStore, open_store


def _write_run(store: ObjectStore, seed: int = 0) -> dict[tuple[str, int], list[int]]:
    """A run with gaps; returns the expected (prompt, epoch) -> [correct, total] by a plain loop."""
    rng = np.random.default_rng(seed)
    ids = [f"p{i}" for i in range(30)]
    write_run_meta(store, RunMeta(run_id="r", num_prompts=len(ids)))
    write_prompts(store, "r", [PromptRecord(p, f"prompt {p}", "1") for p in ids + ["never"]])
    want: dict[tuple[str, int], list[int]] = {}
    step = 0
    for epoch in range(5):
        for part in range(2):
            present = [p for p in ids if rng.random() > 0.15]
            pids = [p for p in present for _ in range(3)]
            ok = rng.random(len(pids)) < 0.5
            for p, c in zip(pids, ok, strict=True):
                w = want.setdefault((p, epoch), [0, 0])
                w[0] += int(c)
                w[1] += 1
            n = len(pids)
            t = events_table("r", step, [epoch] * n, pids, [0, 1, 2] * (n // 3), ok.astype(float), ok, [9] * n)
            write_events(store, "r", step, part, t)
        step += 1
    return want


def _check(store: ObjectStore) -> None:
    want = _write_run(store)
    res = score_run(store, "r", threads=2)
    counts, last, _ = accumulate_run(store, "r")
    assert last.endswith("0000000004-0001.parquet")
    acc = np.full((30, 5), np.nan)
    ids = [f"p{i}" for i in range(30)]
    for (p, e), (c, t) in want.items():
        acc[ids.index(p), e] = c / t
    filled = fill_missing_epochs(acc)
    kept = ~np.isnan(filled).any(axis=1)
    assert sorted(res.prompt_ids) == sorted(np.array(ids)[kept].tolist())
    r_avg = filled[kept].mean(axis=0)
    np.testing.assert_allclose(res.r_avg, r_avg, atol=1e-12)
    for pid, s, traj in zip(res.prompt_ids, res.scores, res.trajectories, strict=True):
        row = filled[ids.index(pid)]
        np.testing.assert_allclose(traj, row)
        assert s == pytest.approx(1 - ((row - r_avg) ** 2).sum() / ((1 - r_avg) ** 2).sum(), abs=1e-12)
    assert res.left_out["never"] == "no events"
    for pid in set(ids) - set(res.prompt_ids):
        assert res.left_out[pid].startswith("no samples in epoch(s)")
    assert res.events == sum(t for _, t in want.values()) and res.prompts["p0"] == "prompt p0"
    # max_epochs truncates before filling.
    res3 = score_run(store, "r", max_epochs=3)
    assert res3.epochs == 3 and res3.trajectories.shape[1] == 3


def test_score_run_local(tmp_path) -> None:
    _check(open_store(str(tmp_path / "store")))


def test_score_run_s3(s3_uri: str) -> None:
    _check(open_store(s3_uri))


def test_missing_and_empty_runs(tmp_path) -> None:
    store = open_store(str(tmp_path / "store"))
    with pytest.raises(RunNotFound, match="no run 'nope'"):
        score_run(store, "nope")
    write_run_meta(store, RunMeta(run_id="empty"))
    with pytest.raises(EmptyRun, match="run 'empty' has no events"):
        score_run(store, "empty")


def test_incremental_accumulation_and_checkpoint_equal_one_pass(tmp_path) -> None:
    store = open_store(str(tmp_path / "store"))
    _write_run(store)
    whole, _, _ = accumulate_run(store, "r")
    keys = store.list_keys("runs/r/events/")
    first, cursor, _ = accumulate_run(store, "r", threads=1)
    # Resume from a checkpoint taken half-way: same counts as one pass.
    half = keys[len(keys) // 2 - 1]
    early = EpochCounts()
    for key in keys[: len(keys) // 2]:
        early.add_table(read_events_object(store, key, ("prompt_id", "epoch", "correct")), key)
    restored = EpochCounts.from_bytes(early.to_bytes())
    resumed, last, _ = accumulate_run(store, "r", counts=restored, start_after=half)
    assert last == keys[-1] and cursor == keys[-1]
    assert resumed.events == whole.events == first.events
    order = [resumed.ids.index(p) for p in whole.ids]
    np.testing.assert_array_equal(resumed.correct[order], whole.correct)
    np.testing.assert_array_equal(resumed.total[order], whole.total)


def test_objects_of_one_or_several_epochs_count_alike(tmp_path) -> None:
    """One-epoch objects are counted from their Parquet statistics, others by decoding `epoch`: same counts."""
    store = open_store(str(tmp_path))
    rng = np.random.default_rng(7)
    tables = []
    for step, epochs in enumerate(([0] * 40, [1] * 20 + [2] * 20, [3] * 40)):
        pids = [f"p{i}" for i in rng.integers(0, 15, len(epochs))]
        ok = rng.random(len(pids)) < 0.5
        t = events_table("r", step, epochs, pids, [0] * len(pids), ok.astype(float), ok, [1] * len(pids))
        write_events(store, "r", step, 0, t)
        tables.append(t)
    counts, _, _ = accumulate_run(store, "r", threads=2)
    plain = EpochCounts()
    for t in tables:
        plain.add_table(t)
    assert counts == plain and counts.num_epochs == 4
