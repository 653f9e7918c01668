"""Every importer on the same run: its LIM equals that of the run written in limr's own event format, and
`limr import verl` + `limr select` equals the released LIMR script (tests/events/dumps.py restates it).
Fixtures follow each framework's code (tests/importers/fixtures.py names the files)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from limr.data.pool import load_pool
from limr.events.correct import CorrectRuleError, parse_correct
from limr.events.run import read_run_meta, run_finished
from limr.events.writer import EventWriter
from limr.importers import FINISH_SIGNAL, Follow, dump_format, import_dump
from limr.importers.matching import PromptMatcher
from limr.scoring import score_run
from limr.store import open_store
from tests.cli.test_lim_cli import limr, read_jsonl
from tests.events.dumps import EPOCHS, make_dumps, released_lim, released_select
from tests.importers.fixtures import read_openrlhf, write_areal, write_nemo_rl, write_trl, write_verl

K = 3  # steps per epoch


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    """The run (OpenRLHF form, what the released script reads), its pool, and its steps."""
    root = tmp_path_factory.mktemp("run")
    root, records = make_dumps(root, steps_per_epoch=K, samples=4, per_group=6)
    pool = root / "pool.json"
    pool.write_text(json.dumps(records))
    return root, pool, records, read_openrlhf(root / "train")


@pytest.fixture(scope="module")
def own_format(run, tmp_path_factory: pytest.TempPathFactory):
    """The same samples written with limr's EventWriter: the reference every importer must match."""
    _, pool_path, _, steps = run
    pool = load_pool(pool_path)
    store = open_store(str(tmp_path_factory.mktemp("own")))
    writer = EventWriter(store, "own", pool, steps_per_epoch=K)
    id_of = {pool.prompt(i).strip(): pid for i, pid in enumerate(pool.ids)}
    for step, rows in steps.items():
        writer.write_step(step, [id_of[r["prompt"]] for r in rows], [r["reward"] for r in rows], epoch=(step - 1) // K)
    writer.finish()
    return score_run(store, "own")


WRITERS = {"verl": write_verl, "nemo-rl": write_nemo_rl, "areal": write_areal, "trl": write_trl}


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_importer_lim_equals_own_format(fmt, run, own_format, tmp_path: Path) -> None:
    _, pool_path, _, steps = run
    dump = WRITERS[fmt](tmp_path / "dump", steps)
    store = open_store(str(tmp_path / "store"))
    summary = import_dump(store, dump_format(fmt), dump, "imp", K, load_pool(pool_path))
    assert (summary.epochs, summary.steps, summary.unmapped.unmapped_samples) == (EPOCHS, K * EPOCHS, 0)
    got = score_run(store, "imp")
    assert got.prompt_ids == own_format.prompt_ids
    np.testing.assert_array_equal(got.scores, own_format.scores)
    assert got.left_out == own_format.left_out
    assert read_run_meta(store, "imp").source == f"{fmt}-import"
    assert run_finished(store, "imp").epochs == EPOCHS


def test_verl_import_then_select_equals_released_script(run, tmp_path: Path) -> None:
    """The Must-show: a verl dump -> `limr import verl` -> `limr select` / `limr score` == lim_selection.py."""
    root, pool, records, steps = run
    dump = write_verl(tmp_path / "rollout_data", steps)
    store = str(tmp_path / "store")
    code, out = limr("import", "verl", dump, "--run", "v", "--steps-per-epoch", K, "--prompts", pool, "--store", store)
    assert code == 0, out
    want_scores = released_lim(root / "train", K, EPOCHS)
    scores = tmp_path / "scores.jsonl"
    assert limr("score", "--run", "v", "--store", store, "--out", scores)[0] == 0
    got = {r["prompt"]: r["score"] for r in read_jsonl(scores) if r["score"] is not None}
    assert got.keys() == want_scores.keys() and max(abs(got[p] - want_scores[p]) for p in got) < 1e-12
    for threshold in (0.2, 0.6, 0.85):
        sel = tmp_path / "sel.jsonl"
        code, out = limr(
            "select", "--run", "v", "--store", store, "--prompts", pool, "--threshold", threshold, "--out", sel
        )
        assert code == 0, out
        assert read_jsonl(sel) == released_select(want_scores, records, threshold)


def test_dapo_gaps_are_reported_and_correct_rules_agree(run, tmp_path: Path) -> None:
    _, pool_path, _, steps = run
    dump = write_verl(tmp_path / "dapo", steps, dapo_filter=True)
    pool = load_pool(pool_path)
    store = open_store(str(tmp_path / "store"))
    fmt = dump_format("verl")
    summary = import_dump(store, fmt, dump, "by-reward", K, pool)
    assert all(n < len(pool) for n in summary.epoch_prompts)
    assert any("filtered groups" in n for n in summary.notes(len(pool)))
    import_dump(store, fmt, dump, "by-acc", K, pool, correct="acc")
    import_dump(store, fmt, dump, "by-score", K, pool, correct="score >= 0.75")
    a, b, c = (score_run(store, r) for r in ("by-reward", "by-acc", "by-score"))
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.scores, c.scores)
    # The rule can also be applied when scoring: `acc` is kept in the events' scores.
    d = score_run(store, "by-reward", correct=parse_correct("acc"))
    np.testing.assert_array_equal(a.scores, d.scores)
    with pytest.raises(CorrectRuleError, match="names 'nope'"):
        import_dump(store, fmt, dump, "bad-rule", K, pool, correct="nope")


def test_trl_named_reward_column(run, tmp_path: Path) -> None:
    _, pool_path, _, steps = run
    dump = write_trl(tmp_path / "out", steps)
    store = open_store(str(tmp_path / "store"))
    pool = load_pool(pool_path)
    import_dump(store, dump_format("trl"), dump, "sum", K, pool)
    import_dump(store, dump_format("trl"), dump, "acc", K, pool, correct="accuracy_reward == 1")
    np.testing.assert_array_equal(score_run(store, "sum").scores, score_run(store, "acc").scores)


def test_follow_writes_whole_epochs_as_they_complete_then_finishes(run, tmp_path: Path) -> None:
    _, pool_path, _, steps = run
    live = tmp_path / "live"
    live.mkdir()
    store = open_store(str(tmp_path / "store"))
    result: dict = {}
    stop = threading.Event()

    def follow() -> None:
        result["s"] = import_dump(
            store, dump_format("verl"), live, "live", K, load_pool(pool_path), None, Follow(0.05, stop=stop)
        )

    t = threading.Thread(target=follow)
    t.start()
    staged = write_verl(tmp_path / "staged", steps)
    seen_epochs = []
    for step in sorted(steps):
        (live / f"{step}.jsonl").write_bytes((staged / f"{step}.jsonl").read_bytes())
        time.sleep(0.15)
        seen_epochs.append(len(store.list_keys("runs/live/events/")) // K)
    # Epoch e is written once a step of epoch e + 1 is dumped; the last one waits for the finish signal.
    assert seen_epochs[K] == 1 and seen_epochs[-1] == EPOCHS - 1
    assert run_finished(store, "live") is None
    (live / FINISH_SIGNAL).touch()
    t.join(10)
    assert not t.is_alive() and result["s"].finished and run_finished(store, "live").epochs == EPOCHS


def test_follow_stops_when_told_leaving_the_run_unfinished_and_resumes(run, tmp_path: Path) -> None:
    _, pool_path, _, steps = run
    dump = write_verl(tmp_path / "d", {s: r for s, r in steps.items() if s <= K + 1})
    store = open_store(str(tmp_path / "store"))
    stop = threading.Event()
    stop.set()
    first = import_dump(store, dump_format("verl"), dump, "r", K, load_pool(pool_path), None, Follow(0.05, stop=stop))
    assert (first.epochs, first.finished, run_finished(store, "r")) == (1, False, None)
    (dump / FINISH_SIGNAL).touch()  # rerun: idempotent, then finished (the partial epoch 1 is ignored)
    again = import_dump(store, dump_format("verl"), dump, "r", K, load_pool(pool_path), None, Follow(0.05))
    assert again.finished and again.ignored_steps == [K + 1] and run_finished(store, "r").epochs == 1


def test_matcher_templates_unmapped_and_ambiguous() -> None:
    from limr.events.io import PromptRecord

    recs = [
        PromptRecord("a", "What is 1+1?", "2"),
        PromptRecord("b", "What is 1+1? Explain.", "2"),
        PromptRecord("c", "Name a prime.", "2"),
        PromptRecord("d", "Name a prime.", "3"),
    ]
    m = PromptMatcher(recs)
    assert m.id_of("What is 1+1?") == "a"  # exact
    assert m.id_of("system\nBe brief.\nuser\nWhat is 1+1? Explain.\nassistant\n") == "b"  # longest contained
    assert m.id_of("system\nBe brief.\nuser\nWhat is 1+1?\nassistant\n") == "a"  # through the learned wrapper
    assert m.id_of("user: Name a prime.") == "c"  # same text, first id (as the pool's own text index)
    assert m.id_of("Something else") is None
    assert m.report.unmapped_samples == 1 and m.report.examples == ["Something else"]


@pytest.mark.parametrize(
    ("expr", "values", "want"),
    [
        ("reward == 1", [1.0, 0.5, -1.0], [True, False, False]),
        ("acc", [1.0, 0.0, float("nan")], [True, False, False]),
        ("score >= 0.5", [0.5, 0.49, 2.0], [True, False, True]),
        ("x != 0", [0.0, 1.0, -2.0], [False, True, True]),
        ("ok == true", [1.0, 0.0, 1.0], [True, False, True]),
    ],
)
def test_correct_rules(expr, values, want) -> None:
    assert parse_correct(expr).apply(np.array(values)).tolist() == want
    assert parse_correct(str(parse_correct(expr))) == parse_correct(expr)


@pytest.mark.parametrize("bad", ["reward = 1", "__import__('os')", "reward == x", "1 == reward", "a b", ""])
def test_correct_rule_errors(bad) -> None:
    with pytest.raises(CorrectRuleError, match="expected FIELD or FIELD OP NUMBER"):
        parse_correct(bad)


def test_errors_name_file_and_line(tmp_path: Path) -> None:
    d = tmp_path / "v"
    d.mkdir()
    (d / "1.jsonl").write_text('{"input": "q", "output": "a", "score": 1, "step": 1}\n{"input": "q", "score": "x"}\n')
    with pytest.raises(ValueError, match=r"1\.jsonl: line 2: field 'score' is 'x'"):
        import_dump(open_store(str(tmp_path / "s")), dump_format("verl"), d, "r", 1)


def test_scorer_curates_a_followed_verl_run_with_early_versions(run, tmp_path: Path) -> None:
    """`limr import verl --follow` beside the scorer: provisional early-LIM versions while the run trains,
    then the final version, equal to `limr select` on the finished run."""
    from limr.curation.policy import PublishPolicy
    from limr.curation.publish import list_versions, read_manifest, version_status
    from services.scorer.config import ScorerSettings
    from services.scorer.ingest import Ingestor

    _, pool_path, _, steps = run
    live = tmp_path / "live"
    live.mkdir()
    store = open_store(str(tmp_path / "store"))
    policy = PublishPolicy(name="{run}-lim", strategy="lim", threshold=0.6, early_epochs=2)
    scorer = Ingestor(store, ScorerSettings(store=store.uri, policies=(policy,), notifications="off"))
    stop = threading.Event()
    t = threading.Thread(
        target=import_dump,
        args=(store, dump_format("verl"), live, "v", K, load_pool(pool_path), None, Follow(0.05, stop=stop)),
        kwargs={"epochs": EPOCHS},
    )
    t.start()
    staged = write_verl(tmp_path / "staged", steps)
    statuses = []
    try:
        for step in sorted(steps):
            (live / f"{step}.jsonl").write_bytes((staged / f"{step}.jsonl").read_bytes())
            time.sleep(0.2)
            scorer.poll_once()
            versions = list_versions(store, "v-lim")
            statuses.append(version_status(read_manifest(store, "v-lim", versions[-1])) if versions else None)
        (live / FINISH_SIGNAL).touch()
        t.join(10)
    finally:
        stop.set()
    scorer.poll_once()
    assert statuses[: 2 * K] == [None] * (2 * K)  # fewer than 2 complete epochs: nothing yet
    assert "provisional" in statuses  # early-LIM versions while it trained
    final = read_manifest(store, "v-lim", list_versions(store, "v-lim")[-1])
    assert version_status(final) == "final" and final["epochs_used"] == EPOCHS


def test_scorer_applies_its_correct_setting(run, tmp_path: Path) -> None:
    """`LIMR_CORRECT` / `limr serve scorer --correct`: the scorer counts by the rule, as `limr score --correct`."""
    from pydantic import ValidationError

    from services.scorer.config import ScorerSettings
    from services.scorer.ingest import Ingestor

    _, pool_path, _, steps = run
    dump = write_verl(tmp_path / "d", steps)
    store = open_store(str(tmp_path / "store"))
    import_dump(store, dump_format("verl"), dump, "r", K, load_pool(pool_path))
    rule = "reward >= 0"  # zero and 0.5 rewards count as correct too
    scorer = Ingestor(store, ScorerSettings(store=store.uri, policies=(), notifications="off", correct=rule))
    scorer.poll_once()
    state = scorer.states["r"]
    want = score_run(store, "r", correct=parse_correct(rule))
    from limr.scoring import score_counts

    got = score_counts(state.counts)
    assert dict(zip(got.prompt_ids, got.scores, strict=True)) == dict(zip(want.prompt_ids, want.scores, strict=True))
    assert not np.array_equal(want.scores, score_run(store, "r").scores[: len(want.scores)])
    with pytest.raises(ValidationError, match="expected FIELD"):
        ScorerSettings(correct="reward = 1")


def test_steps_per_epoch_inferred_from_the_first_repeated_prompt(run, tmp_path: Path) -> None:
    from limr.importers import infer_steps_per_epoch

    root, pool, _, steps = run
    dump = write_verl(tmp_path / "d", steps)
    assert infer_steps_per_epoch(dump_format("verl"), dump, load_pool(pool)) == K
    store = str(tmp_path / "store")
    code, out = limr("import", "verl", dump, "--run", "v", "--prompts", pool, "--store", store)
    assert code == 0 and f"steps per epoch: {K} (inferred" in out and f"{EPOCHS} epochs" in out
    one = write_verl(tmp_path / "one", {s: r for s, r in steps.items() if s <= K})
    code, out = limr("import", "verl", one, "--run", "w", "--prompts", pool, "--store", store)
    assert code == 2 and "give --steps-per-epoch" in out
