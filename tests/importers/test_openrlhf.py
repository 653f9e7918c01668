"""OpenRLHF dump and published-score readers, and the import into a run: layout, epochs, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from limr.data.pool import build_pool
from limr.events.ids import prompt_hash_id
from limr.events.io import list_event_keys, read_events_object, read_prompts
from limr.events.run import read_run_meta, run_finished
from limr.events.writer import RunExists
from limr.importers import dump_format, import_dump
from limr.importers.base import DumpError
from limr.importers.openrlhf import read_published_scores, read_step
from limr.scoring import score_run
from limr.scoring.sources import score_openrlhf
from limr.store import open_store
from tests.events.dumps import EPOCHS, make_dumps, released_lim


def _step(path: Path, rows: object) -> Path:
    path.write_text(json.dumps(rows) if not isinstance(rows, str) else rows)
    return path


def import_openrlhf(store, root, k, run_id, pool=None):
    return import_dump(store, dump_format("openrlhf"), root, run_id, k, pool)


def test_finds_train_subdir_and_ignores_partial_epoch(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    for s in range(1, 8):
        _step(tmp_path / "train" / f"step_{s}.json", [{"prompt": f"p{s % 3}", "reward": 1}])
    summary = import_openrlhf(open_store(str(tmp_path / "store")), tmp_path, 3, "r")
    assert (summary.epochs, summary.steps, summary.ignored_steps) == (2, 6, [7])


def test_step_errors(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    (tmp_path / "d").mkdir()
    with pytest.raises(DumpError, match="no openrlhf step files"):
        import_openrlhf(store, tmp_path / "d", 2, "a")
    for s in (1, 2, 4):
        _step(tmp_path / "d" / f"step_{s}.json", [{"prompt": "x", "reward": 1}])
    with pytest.raises(DumpError, match=r"missing step file\(s\) 3"):
        import_openrlhf(store, tmp_path / "d", 2, "b")
    with pytest.raises(DumpError, match="fewer than one epoch"):
        import_openrlhf(store, tmp_path / "d", 8, "c")
    assert store.list_keys("runs/") == []  # failed imports leave nothing


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


def test_import_reports_unknown_prompts_is_idempotent_and_refuses_other_imports(tmp_path: Path) -> None:
    root, records = make_dumps(tmp_path / "dumps")
    pool = build_pool(tmp_path / "pool.json", ((f"row {i}", r) for i, r in enumerate(records[3:])))
    store = open_store(str(tmp_path / "store"))
    summary = import_openrlhf(store, root, 3, "part", pool=pool)
    assert summary.unmapped.unmapped_prompts == 3 and summary.unmapped.unmapped_samples > 0
    assert any("not found in the pool" in n for n in summary.notes(len(pool)))
    import_openrlhf(store, root, 3, "ok")
    before = {k: store.get(k) for k in store.list_keys("runs/ok/events/")}
    again = import_openrlhf(store, root, 3, "ok")  # the same import again: the same objects
    assert again.finished and {k: store.get(k) for k in store.list_keys("runs/ok/events/")} == before
    with pytest.raises(RunExists, match="already exists"):
        import_openrlhf(store, root, 2, "ok")
    # Without a pool, ids are hashes of the stripped prompt text.
    assert prompt_hash_id(records[0]["prompt"]) in {p.prompt_id for p in read_prompts(store, "ok")}
