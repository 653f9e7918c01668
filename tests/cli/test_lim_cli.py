"""`limr import-openrlhf / score / select`: the published 1,389, parity with the released script, strategies,
and bad input (clear error, non-zero exit, no output file)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from limr.cli.main import app
from limr.events.io import PromptRecord, events_table, write_events, write_prompts
from limr.events.run import RunMeta, write_run_meta
from limr.store import open_store
from tests.conftest import REPO, shared_file
from tests.events.dumps import EPOCHS, make_dumps, released_lim, released_select

runner = CliRunner()


def limr(*args: object) -> tuple[int, str]:
    res = runner.invoke(app, [str(a) for a in args])
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict]]:
    root = tmp_path_factory.mktemp("dumps")
    root, records = make_dumps(root, steps_per_epoch=3, samples=4, per_group=6)
    pool = root / "pool.json"
    pool.write_text(json.dumps(records))
    return root, pool, records


@pytest.fixture(scope="module")
def imported(dumps, tmp_path_factory: pytest.TempPathFactory) -> str:
    root, pool, _ = dumps
    store = str(tmp_path_factory.mktemp("store"))
    code, out = limr(
        "import-openrlhf", root, "--steps-per-epoch", 3, "--run", "imp", "--store", store, "--prompts", pool
    )
    assert code == 0, out
    assert f"{3 * EPOCHS} steps, {EPOCHS} epochs" in out
    return store


def test_published_scores_select_exactly_1389(tmp_path: Path) -> None:
    scores = shared_file("data", "limr", "scores.json")
    prompts = shared_file("data", "limr", "math.8k.json")
    out = tmp_path / "limr.jsonl"
    code, text = limr("select", "--scores", scores, "--prompts", prompts, "--threshold", 0.6, "--out", out)
    assert code == 0, text
    assert "selected 1389 of 8523" in text
    rows = read_jsonl(out)
    assert len(rows) == 1389
    # Records unchanged and in the prompts file's order; the same set the released filter gives.
    pool = json.loads(prompts.read_text())
    chosen = {s["prompt"] for s in json.loads(scores.read_text()) if s["score"] >= 0.6}
    assert rows == [r for r in pool if r["prompt"] in chosen]


@pytest.mark.parametrize("max_epochs", [2, 3, 5, 6])
def test_parity_with_released_script(dumps, imported: str, tmp_path: Path, max_epochs: int) -> None:
    root, pool, records = dumps
    want_scores = released_lim(root / "train", 3, max_epochs)
    assert want_scores, "the generated dumps must keep some prompts"
    # limr score on the imported run gives the released scores (to 1e-9) and reports the others.
    out = tmp_path / "scores.jsonl"
    code, text = limr("score", "--run", "imp", "--store", imported, "--max-epochs", max_epochs, "--out", out)
    assert code == 0, text
    rows = read_jsonl(out)
    got = {r["prompt"]: r["score"] for r in rows if r["score"] is not None}
    assert got.keys() == want_scores.keys()
    assert max(abs(got[p] - want_scores[p]) for p in got) < 1e-9
    left = {r["prompt_id"]: r["left_out"] for r in rows if r["score"] is None}
    assert len(left) == len(records) - len(got) and "id-unused" in left
    for threshold in (-1.0, 0.2, 0.6, 0.85):
        want = released_select(want_scores, records, threshold)
        for source in (["--openrlhf-samples", root, "--steps-per-epoch", 3], ["--run", "imp", "--store", imported]):
            sel = tmp_path / "sel.jsonl"
            code, text = limr(
                "select",
                *source,
                "--prompts",
                pool,
                "--max-epochs",
                max_epochs,
                "--threshold",
                threshold,
                "--out",
                sel,
            )
            assert code == 0, text
            assert read_jsonl(sel) == want, (source[0], threshold)


def test_gap_cases_are_exercised(dumps) -> None:
    """The generated dumps really contain kept single gaps and left-out double/last gaps."""
    root, _, _ = dumps
    kept = released_lim(root / "train", 3, EPOCHS)
    groups = {p.split()[0].strip("["): p for p in kept}
    assert {"single_gap", "two_singles", "first_gap", "gap_before_last", "always"} <= groups.keys()
    assert not {"double_gap", "last_gap", "early_only", "late_only"} & groups.keys()
    # With 3 epochs the last-gap and early-only prompts are complete again.
    assert {"last_gap", "early_only"} <= {p.split()[0].strip("[") for p in released_lim(root / "train", 3, 3)}


def test_top_k_fraction_rand_linear(dumps, tmp_path: Path) -> None:
    root, pool, records = dumps
    src = ["--openrlhf-samples", root, "--steps-per-epoch", 3, "--prompts", pool]
    scores = released_lim(root / "train", 3, EPOCHS)
    ranked = sorted(scores, key=lambda p: -scores[p])
    out = tmp_path / "o.jsonl"
    assert limr("select", *src, "--top-k", 5, "--out", out)[0] == 0
    assert {r["prompt"] for r in read_jsonl(out)} == set(ranked[:5])
    assert limr("select", *src, "--fraction", 0.5, "--out", out)[0] == 0
    assert len(read_jsonl(out)) == round(0.5 * len(scores))
    # rand: seeded, reproducible, sized like lim at the threshold, drawn from the whole prompts file.
    code, text = limr("select", *src, "--strategy", "rand", "--threshold", 0.6, "--seed", 3, "--out", out)
    assert code == 0, text
    first = read_jsonl(out)
    assert len(first) == sum(s >= 0.6 for s in scores.values())
    limr("select", *src, "--strategy", "rand", "--threshold", 0.6, "--seed", 3, "--out", out)
    assert read_jsonl(out) == first
    limr("select", *src, "--strategy", "rand", "--threshold", 0.6, "--seed", 4, "--out", out)
    assert read_jsonl(out) != first
    assert limr("select", *src, "--strategy", "rand", "--top-k", 7, "--out", out)[0] == 0
    assert len(read_jsonl(out)) == 7
    # linear: selects steadily improving prompts (positive slope x R^2 over the filled trajectory).
    code, text = limr("select", *src, "--strategy", "linear", "--threshold", 0.3, "--out", out)
    assert code == 0, text and "linear" in text
    assert all(r["prompt"] in scores for r in read_jsonl(out))
    # the field's selectors: sized by --top-k, the band as its own option; a malformed band is one error line
    for strategy in ("variance", "learnability", "pass-band"):
        code, text = limr("select", *src, "--strategy", strategy, "--top-k", 4, "--out", out)
        assert code == 0 and strategy in text and len(read_jsonl(out)) == 4, text
    code, text = limr("select", *src, "--strategy", "pass-band", "--threshold", 0, "--band", "0,1", "--out", out)
    assert code == 0 and len(read_jsonl(out)) == len(scores), text  # [0, 1] keeps every scored prompt
    code, text = limr("select", *src, "--strategy", "pass-band", "--threshold", 0, "--band", "0.9", "--out", out)
    assert code == 2 and "error: --band must be LO,HI" in text
    code, text = limr("select", *src, "--strategy", "pass-band", "--threshold", 0, "--band", "0.9,0.1", "--out", out)
    assert code == 2 and "lo <= hi" in text
    # .json output is a JSON list (the released script's format).
    out_json = tmp_path / "o.json"
    assert limr("select", *src, "--top-k", 3, "--out", out_json)[0] == 0
    assert len(json.loads(out_json.read_text())) == 3


def _bad_run_store(tmp_path: Path, kind: str) -> str:
    store = open_store(str(tmp_path / "store"))
    write_run_meta(store, RunMeta(run_id="r"))
    write_prompts(store, "r", [PromptRecord("a", "A?", "1"), PromptRecord("b", "B?", "2")])
    if kind == "empty":
        return store.uri
    good = events_table("r", 0, [0, 0], ["a", "b"], [0, 0], [1.0, 0.0], [True, False], [5, 5])
    write_events(store, "r", 0, 0, good)
    if kind == "nan":
        write_events(
            store, "r", 1, 0, events_table("r", 1, [1, 1], ["a", "b"], [0, 0], [1.0, math.nan], [True, False], [5, 5])
        )
    elif kind == "unknown":
        write_events(
            store,
            "r",
            1,
            0,
            events_table("r", 1, [1, 1, 1], ["a", "b", "zz"], [0, 0, 0], [1, 0, 0], [True, False, False], [5, 5, 5]),
        )
    elif kind == "mistyped":
        t = good.set_column(2, "epoch", pa.array([1.0, 1.0]))
        pq.write_table(t, tmp_path / "store" / "runs" / "r" / "events" / "0000000001-0000.parquet")
    elif kind == "missing":
        t = good.drop_columns(["correct"])
        pq.write_table(t, tmp_path / "store" / "runs" / "r" / "events" / "0000000001-0000.parquet")
    return store.uri


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", "run 'r' has no events"),
        ("nan", r"0000000001-0000.parquet: column 'reward' is NaN at row 1"),
        ("unknown", r"0000000001-0000.parquet: row 2: unknown prompt_id 'zz'"),
        ("mistyped", r"0000000001-0000.parquet: column 'epoch' has type double, expected int32"),
        ("missing", r"0000000001-0000.parquet: missing required column 'correct'"),
    ],
)
def test_bad_runs(tmp_path: Path, kind: str, message: str) -> None:
    store = _bad_run_store(tmp_path, kind)
    pool = tmp_path / "p.json"
    pool.write_text(json.dumps([{"id": "a", "prompt": "A?"}, {"id": "b", "prompt": "B?"}]))
    for args in (["score", "--run", "r"], ["select", "--run", "r", "--prompts", pool, "--threshold", 0.5]):
        out = tmp_path / "out.jsonl"
        code, text = limr(*args, "--store", store, "--out", out)
        assert code == 2 and "error:" in text
        assert re.search(message, text), text
        assert not out.exists() and not list(tmp_path.glob(".out.jsonl*"))


def test_bad_select_arguments(dumps, imported: str, tmp_path: Path) -> None:
    root, pool, records = dumps
    src = ["--openrlhf-samples", root, "--steps-per-epoch", 3, "--prompts", pool]
    out = tmp_path / "o.jsonl"
    cases = [
        ([*src, "--threshold", 1.5], "--threshold 1.5 is above 1"),
        ([*src, "--threshold", "nan"], "--threshold must be a finite number"),
        ([*src, "--threshold", "abc"], "Invalid value for '--threshold'"),
        ([*src], "give exactly one of --threshold, --top-k, --fraction"),
        ([*src, "--threshold", 0.5, "--top-k", 3], "give exactly one of --threshold, --top-k, --fraction"),
        (["--prompts", pool, "--threshold", 0.5], "give exactly one of --run, --openrlhf-samples, --scores"),
        ([*src, "--strategy", "best", "--threshold", 0.5], "--strategy must be one of lim, rand, linear"),
        ([*src, "--fraction", 1.5], "--fraction must be in (0, 1]"),
        (["--openrlhf-samples", root, "--prompts", pool, "--threshold", 0.5], "needs --steps-per-epoch"),
        (["--run", "nope", "--store", imported, "--prompts", pool, "--threshold", 0.5], "no run 'nope'"),
    ]
    for args, message in cases:
        code, text = limr("select", *args, "--out", out)
        assert code != 0 and message in text, (args, text)
        assert not out.exists()


def test_prompts_file_without_ids_and_unknown_prompts(dumps, imported: str, tmp_path: Path) -> None:
    root, _, records = dumps
    out = tmp_path / "o.jsonl"
    # The imported run keys prompts by the pool's ids; a prompts file without ids still matches by text...
    no_ids = tmp_path / "noids.jsonl"
    no_ids.write_text("".join(json.dumps({"prompt": r["prompt"]}) + "\n" for r in records))
    code, text = limr("select", "--run", "imp", "--store", imported, "--prompts", no_ids, "--top-k", 4, "--out", out)
    assert code == 0, text
    # ...but a prompts file missing some scored prompts is refused, naming it and an example.
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(records[10:]))
    out = tmp_path / "o2.jsonl"
    for src in (["--run", "imp", "--store", imported], ["--openrlhf-samples", root, "--steps-per-epoch", 3]):
        code, text = limr("select", *src, "--prompts", partial, "--top-k", 4, "--out", out)
        assert code == 2 and "partial.json:" in text and "scored prompts are not in the prompts file" in text
        assert not out.exists()
    bad_pool = tmp_path / "bad.json"
    bad_pool.write_text(json.dumps([{"id": "x"}]))
    code, text = limr("select", "--run", "imp", "--store", imported, "--prompts", bad_pool, "--top-k", 1, "--out", out)
    assert code == 2 and "bad.json: row 0: field 'prompt' is missing" in text


def test_malformed_dump_fails_cleanly(dumps, tmp_path: Path) -> None:
    root, pool, _ = dumps
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in (root / "train").iterdir():
        (broken / f.name).write_text(f.read_text())
    (broken / "step_5.json").write_text('[{"prompt": "x", "reward": 1}, {"prompt": "y", "reward": NaN}]')
    out = tmp_path / "o.jsonl"
    code, text = limr(
        "select",
        "--openrlhf-samples",
        broken,
        "--steps-per-epoch",
        3,
        "--prompts",
        pool,
        "--threshold",
        0.5,
        "--out",
        out,
    )
    assert code == 2 and "step_5.json: row 1: field 'reward' is nan" in text and not out.exists()
    store = str(tmp_path / "s")
    code, text = limr("import-openrlhf", broken, "--steps-per-epoch", 3, "--run", "x", "--store", store)
    assert code == 2 and "step_5.json: row 1" in text
    assert not list((tmp_path / "s").rglob("*.parquet"))


def test_scoring_cli_imports_no_ml_stack(tmp_path: Path) -> None:
    """`limr select` through the real entry point must not import torch, ray, vllm or transformers."""
    scores = tmp_path / "s.json"
    scores.write_text(json.dumps([{"prompt": "a", "score": 0.9}, {"prompt": "b", "score": 0.1}]))
    pool = tmp_path / "p.json"
    pool.write_text(json.dumps([{"prompt": "a"}, {"prompt": "b"}]))
    # The entry module's app, every command registered, run without click's standalone exit (limr.cli.main.main
    # ends data commands with os._exit, after which nothing could be checked).
    code = (
        "import sys\nfrom limr.cli.main import app\n"
        f"app(['select', '--scores', {str(scores)!r}, '--prompts', {str(pool)!r},"
        f" '--threshold', '0.5', '--out', {str(tmp_path / 'o.jsonl')!r}], standalone_mode=False)\n"
        "heavy = sorted(m for m in ('torch', 'ray', 'vllm', 'transformers') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "HEAVY []" in res.stdout, res.stdout
    assert len(read_jsonl(tmp_path / "o.jsonl")) == 1


def test_prompts_file_without_ids_for_a_run_keyed_by_ids(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    write_run_meta(store, RunMeta(run_id="r"))  # no prompts.parquet: only the ids are known
    write_events(store, "r", 0, 0, events_table("r", 0, [0, 0], ["a", "b"], [0, 0], [1, 0], [True, False], [5, 5]))
    pool = tmp_path / "p.jsonl"
    pool.write_text('{"prompt": "A?"}\n{"prompt": "B?"}\n')
    out = tmp_path / "o.jsonl"
    code, text = limr("select", "--run", "r", "--store", store.uri, "--prompts", pool, "--top-k", 1, "--out", out)
    assert code == 2 and "p.jsonl: 2 of 2 scored prompts are not in the prompts file" in text
    assert "has no 'id' fields" in text and not out.exists()
