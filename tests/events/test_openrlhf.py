"""OpenRLHF dump and published-score readers, and the import into a run: layout, epochs, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from limr.data.pool import build_pool
from limr.events.ids import prompt_hash_id
from limr.events.io import list_event_keys, read_events_object, read_prompts
from limr.events.openrlhf import DumpError, import_openrlhf, plan_steps, read_published_scores, read_step
from limr.events.run import read_run_meta, run_finished
from limr.scoring import score_run
from limr.scoring.sources import score_openrlhf
from limr.store import open_store
from tests.events.dumps import EPOCHS, make_dumps, released_lim


def _step(path: Path, rows: object) -> Path:
    path.write_text(json.dumps(rows) if not isinstance(rows, str) else rows)
    return path


def test_plan_finds_train_subdir_and_ignores_partial_epoch(tmp_path: Path) -> None:
    for s in range(1, 8):
        _step(tmp_path / "train" / f"step_{s}.json" if (tmp_path / "train").exists() else _mk(tmp_path, s), [])
    plan = plan_steps(tmp_path, 3)
    assert plan.directory == tmp_path / "train" and plan.epochs == 2 and plan.ignored_steps == [7]
    assert [plan.epoch_of(s) for s in sorted(plan.files)] == [0, 0, 0, 1, 1, 1]
    assert plan_steps(tmp_path / "train", 3, max_epochs=1).epochs == 1


def _mk(root: Path, s: int) -> Path:
    (root / "train").mkdir(exist_ok=True)
    return root / "train" / f"step_{s}.json"


def test_plan_errors(tmp_path: Path) -> None:
    with pytest.raises(DumpError, match="no step_N.json files"):
        plan_steps(tmp_path, 2)
    for s in (1, 2, 4):
        _step(tmp_path / f"step_{s}.json", [])
    with pytest.raises(DumpError, match=r"missing step file\(s\) 3"):
        plan_steps(tmp_path, 2)
    with pytest.raises(DumpError, match="fewer than one epoch"):
        plan_steps(tmp_path, 8)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{", "invalid JSON at line 1"),
        ('{"prompt": "x"}', "expected a JSON list"),
        ([{"prompt": "x", "reward": 1}, {"reward": 1}], "row 1: field 'prompt' is missing"),
        ([{"prompt": "x", "reward": "1"}], "row 0: field 'reward' is '1'"),
        ('[{"prompt": "x", "reward": NaN}]', "row 0: field 'reward' is nan, expected a finite number"),
        ([{"prompt": "x", "reward": None}], "row 0: field 'reward' is missing"),
        ([{"prompt": "x", "reward": 1, "response_length": -3}], "row 0: field 'response_length'"),
        ([{"prompt": "x", "reward": 1}, 5], "row 1: expected an object"),
    ],
)
def test_bad_step_files_name_file_and_row(tmp_path: Path, content: object, message: str) -> None:
    path = _step(tmp_path / "step_1.json", content)
    with pytest.raises(DumpError, match=f"step_1.json: {message}".replace("(", r"\(").replace("[", r"\[")):
        read_step(path, 1, 0)


def test_read_step_accepts_list_rewards_and_float_lengths(tmp_path: Path) -> None:
    rows = [{"prompt": "a", "reward": [1.0], "response_length": 12.0}, {"prompt": "b", "reward": 0}]
    s = read_step(_step(tmp_path / "step_1.json", rows), 1, 0)
    assert s.rewards.tolist() == [1.0, 0.0] and s.response_lengths.tolist() == [12, 0]


def test_published_scores(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text(
        json.dumps([{"prompt": "a", "score": 0.5}, {"prompt": " a ", "score": 0.5}, {"prompt": "b", "score": -1}])
    )
    pub = read_published_scores(p)
    assert pub.prompt_ids == [prompt_hash_id("a"), prompt_hash_id("b")] and pub.scores.tolist() == [0.5, -1.0]
    p.write_text('[{"prompt": "a", "score": NaN}]')
    with pytest.raises(DumpError, match="row 0: field 'score' is NaN"):
        read_published_scores(p)
    p.write_text(json.dumps([{"prompt": "a", "score": 0.5}, {"prompt": "a", "score": 0.7}]))
    with pytest.raises(DumpError, match="row 1: prompt repeats row 0 with another score"):
        read_published_scores(p)
    p.write_text(json.dumps([{"prompt": "a"}]))
    with pytest.raises(DumpError, match="row 0: field 'score' is missing"):
        read_published_scores(p)
    p.write_text('{"prompt": "a", "score": 1}\n{"prompt": "b", "score": 0.25}\n')  # JSONL works too
    assert read_published_scores(p).scores.tolist() == [1.0, 0.25]


def test_import_matches_direct_scoring_and_released(tmp_path: Path) -> None:
    root, records = make_dumps(tmp_path / "dumps")
    pool = build_pool(tmp_path / "pool.json", ((f"row {i}", r) for i, r in enumerate(records)))
    store = open_store(str(tmp_path / "store"))
    summary = import_openrlhf(store, root, 3, "imp", pool=pool)
    assert summary.epochs == EPOCHS and summary.steps == 3 * EPOCHS
    keys = list(list_event_keys(store, "imp"))
    assert len(keys) == 3 * EPOCHS
    t = read_events_object(store, keys[0], ("prompt_id", "sample", "epoch", "response_tokens"))
    assert set(t.column("prompt_id").to_pylist()) <= set(pool.ids)
    assert max(t.column("sample").to_pylist()) == 3  # 4 samples per prompt per step: 0..3
    meta = read_run_meta(store, "imp")
    assert meta.source == "openrlhf-import" and meta.steps_per_epoch == 3
    finished = run_finished(store, "imp")
    assert finished is not None and finished.epochs == EPOCHS and finished.steps == 3 * EPOCHS
    prompts = {p.prompt_id: p for p in read_prompts(store, "imp")}
    assert prompts["id-000"].answer == "0" and prompts["id-000"].source == "always"

    run = score_run(store, "imp")
    direct = score_openrlhf(root, 3)
    want = released_lim(root / "train", 3, EPOCHS)
    by_text = {prompts[pid].prompt: s for pid, s in zip(run.prompt_ids, run.scores, strict=True)}
    direct_by_text = {direct.prompts[pid]: s for pid, s in zip(direct.prompt_ids, direct.scores, strict=True)}
    assert by_text.keys() == direct_by_text.keys() == want.keys()
    for text, score in want.items():
        assert abs(by_text[text] - score) < 1e-9 and abs(direct_by_text[text] - score) < 1e-9
    assert "id-unused" in run.left_out and run.left_out["id-unused"] == "no events"
    np.testing.assert_allclose(run.r_avg, direct.r_avg)


def test_import_refuses_unknown_prompts_and_existing_runs_leaving_nothing(tmp_path: Path) -> None:
    root, records = make_dumps(tmp_path / "dumps")
    pool = build_pool(tmp_path / "pool.json", ((f"row {i}", r) for i, r in enumerate(records[3:])))
    store = open_store(str(tmp_path / "store"))
    with pytest.raises(DumpError, match=r"step_\d+\.json: row \d+: prompt not in the prompts file"):
        import_openrlhf(store, root, 3, "bad", pool=pool)
    assert store.list_keys("runs/") == []  # nothing left behind
    import_openrlhf(store, root, 3, "ok")
    with pytest.raises(DumpError, match="already exists"):
        import_openrlhf(store, root, 3, "ok")
    # Without a pool, ids are hashes of the stripped prompt text.
    assert prompt_hash_id(records[0]["prompt"]) in {p.prompt_id for p in read_prompts(store, "ok")}
