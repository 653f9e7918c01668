"""`limr score --early K` and `limr select --early K`: the final LIM selection predicted from K epochs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from limr.algo.early_lim import predict_final
from limr.curation.early import run_epochs
from limr.demo import write_synthetic_run
from limr.events.run import RunMeta, read_run_meta, write_run_meta
from limr.scoring import accumulate_run
from limr.store import open_store
from tests.cli.test_lim_cli import limr, read_jsonl


@pytest.fixture(scope="module")
def run_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A finished 12-epoch synthetic run (run.json says 12 epochs) and its prompts file."""
    root = tmp_path_factory.mktemp("early")
    store = str(root / "store")
    st = open_store(store)
    write_synthetic_run(st, "syn", num_prompts=300, epochs=12, samples=8, seed=2)
    counts, _, _ = accumulate_run(st, "syn")
    pool = root / "pool.jsonl"
    pool.write_text("".join(json.dumps({"id": pid, "prompt": f"p {pid}", "answer": "1"}) + "\n" for pid in counts.ids))
    return store, pool


def test_score_early_writes_predicted_scores_and_probabilities(run_store, tmp_path):
    store, _ = run_store
    out = tmp_path / "early.jsonl"
    code, text = limr("score", "--store", store, "--run", "syn", "--early", 6, "--out", out)
    assert code == 0, text
    assert "early LIM: 6 of 12 epochs, predictor trend" in text and "predicted precision 0." in text
    rows = [r for r in read_jsonl(out) if r["score"] is not None]
    counts, _, _ = accumulate_run(open_store(store), "syn")
    total = counts.total[:, :6]
    pred = predict_final(counts.accuracy(), 6, 12, 0.6, samples=float(total[total > 0].mean()))
    assert [r["prompt_id"] for r in rows] == [counts.ids[i] for i in np.flatnonzero(pred.kept)]
    np.testing.assert_allclose([r["score"] for r in rows], pred.scores)
    np.testing.assert_allclose([r["p_select"] for r in rows], pred.p_select)
    assert all(len(r["trajectory"]) == 6 for r in rows)
    left = [r for r in read_jsonl(out) if r["score"] is None]
    assert all(r["left_out"].startswith("no samples in epoch(s)") for r in left)


def test_select_early_picks_the_predicted_selection(run_store, tmp_path):
    store, pool = run_store
    out = tmp_path / "sel.jsonl"
    code, text = limr(
        "select", "--store", store, "--run", "syn", "--prompts", pool, "--threshold", 0.6, "--early", 4, "--out", out
    )
    assert code == 0, text
    assert "early LIM: 4 of 12 epochs" in text
    counts, _, _ = accumulate_run(open_store(store), "syn")
    total = counts.total[:, :4]
    pred = predict_final(counts.accuracy(), 4, 12, 0.6, samples=float(total[total > 0].mean()))
    kept_ids = [counts.ids[i] for i in np.flatnonzero(pred.kept)]
    expected = {pid for pid, s in zip(kept_ids, pred.selected, strict=True) if s}
    assert {r["id"] for r in read_jsonl(out)} == expected


def test_select_early_when_every_epoch_is_seen_is_plain_lim(run_store, tmp_path):
    store, pool = run_store
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    base = ("select", "--store", store, "--run", "syn", "--prompts", pool, "--threshold", 0.6)
    # the last epoch misses a few prompts; it counts as complete because the run is marked finished
    assert limr(*base, "--early", 12, "--out", a)[0] == 0
    assert limr(*base, "--out", b)[0] == 0
    assert a.read_text() == b.read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--early", 13), "--early 13 is more than the run's 12 epochs"),
        (
            ("--early", 3, "--strategy", "rand"),
            "--early selects from a run (--run) with --strategy lim and --threshold",
        ),
        (("--early", 3, "--max-epochs", 5), "--early selects from a run"),
    ],
)
def test_select_early_refuses_what_it_cannot_do(run_store, tmp_path, extra, message):
    store, pool = run_store
    out = tmp_path / "x.jsonl"
    code, text = limr(
        "select", "--store", store, "--run", "syn", "--prompts", pool, "--threshold", 0.6, *extra, "--out", out
    )
    assert code == 2 and message in text
    assert not out.exists()


def test_early_needs_the_run_length_and_enough_complete_epochs(run_store, tmp_path):
    store, _ = run_store
    st = open_store(store)
    meta = read_run_meta(st, "syn")
    assert run_epochs(st, "syn") == 12
    stripped = {k: v for k, v in meta.model_dump().items() if k != "config"}
    write_run_meta(st, RunMeta(**stripped, config={}))
    try:
        out = tmp_path / "e.jsonl"
        code, text = limr("score", "--store", store, "--run", "syn", "--early", 3, "--out", out)
        assert code == 2 and "the run's planned epochs are unknown" in text and "--epochs-total" in text
        code, text = limr("score", "--store", store, "--run", "syn", "--early", 3, "--epochs-total", 20, "--out", out)
        assert code == 0 and "3 of 20 epochs" in text
    finally:
        write_run_meta(st, meta)
    code, text = limr("score", "--store", store, "--run", "syn", "--early", 14, "--epochs-total", 20, "--out", out)
    assert code == 2 and "needs 14 complete epochs, the run has 12 so far" in text
