"""Bad file inputs to the CLI (issue 14): one `error:` line naming the file (and field where there is one),
exit status 2, no output file, never a traceback. Each case corrupts one valid input."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from limr.cli.main import app
from tests.events.dumps import make_dumps

GOOD_POOL = [{"id": f"q{i}", "prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(6)]
GOOD_SCORES = [{"prompt": r["prompt"], "score": i / 5} for i, r in enumerate(GOOD_POOL)]


def _jsonl(rows: list) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _parquet(path: Path, table: pa.Table) -> None:
    pq.write_table(table, path)


def _invoke(args: list) -> tuple[int, str]:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.output


def _assert_clean_error(code: int, text: str, name: str, field: str | None, out: Path) -> None:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert code == 2, text
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    assert name in lines[0], text
    if field is not None:
        assert field in lines[0], text
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))


def _pool_case(tmp: Path, kind: str) -> Path:
    p = tmp / ("pool.parquet" if kind.startswith("parquet") else "pool.jsonl")
    if kind == "truncated_jsonl":
        p.write_text(_jsonl(GOOD_POOL)[:-9])
    elif kind == "not_utf8":
        p.write_bytes(b'{"prompt": "\xff\xfe"}\n')
    elif kind == "prompt_null":
        p.write_text(_jsonl([*GOOD_POOL[:2], {"id": "x", "prompt": None}]))
    elif kind == "prompt_number":
        p.write_text(_jsonl([*GOOD_POOL[:2], {"id": "x", "prompt": 7}]))
    elif kind == "row_not_object":
        p.write_text(_jsonl([*GOOD_POOL[:2], [1, 2]]))
    elif kind == "parquet_truncated":
        _parquet(p, pa.Table.from_pylist(GOOD_POOL))
        p.write_bytes(p.read_bytes()[:-40])
    elif kind == "parquet_prompt_int":
        _parquet(p, pa.table({"id": ["a", "b"], "prompt": [1, 2]}))
    elif kind == "directory":
        p = tmp / "pool_dir.jsonl"
        p.mkdir()
    elif kind == "missing":
        p = tmp / "absent.jsonl"
    else:
        raise AssertionError(kind)
    return p


POOL_CASES = {
    "truncated_jsonl": "line 6",
    "not_utf8": None,
    "prompt_null": "prompt",
    "prompt_number": "prompt",
    "row_not_object": "line 3",
    "parquet_truncated": None,
    "parquet_prompt_int": "prompt",
    "directory": None,
    "missing": None,
}


@pytest.mark.parametrize("kind", sorted(POOL_CASES))
def test_bad_prompt_pools(tmp_path: Path, kind: str) -> None:
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps(GOOD_SCORES))
    pool = _pool_case(tmp_path, kind)
    out = tmp_path / "out.jsonl"
    code, text = _invoke(["select", "--scores", scores, "--prompts", pool, "--threshold", 0.5, "--out", out])
    _assert_clean_error(code, text, pool.name, POOL_CASES[kind], out)


SCORE_CASES = {
    "nan": ([{"prompt": "What is 0 + 0?", "score": float("nan")}], "score"),
    "string": ([{"prompt": "What is 0 + 0?", "score": "high"}], "score"),
    "missing_score": ([{"prompt": "What is 0 + 0?"}], "score"),
    "prompt_number": ([{"prompt": 5, "score": 0.5}], "prompt"),
    "not_a_list": ({"prompt": "x", "score": 1}, None),
    "truncated": (None, None),
}


@pytest.mark.parametrize("kind", sorted(SCORE_CASES))
def test_bad_published_scores(tmp_path: Path, kind: str) -> None:
    pool = tmp_path / "pool.jsonl"
    pool.write_text(_jsonl(GOOD_POOL))
    scores = tmp_path / "scores.json"
    content, field = SCORE_CASES[kind]
    scores.write_text(json.dumps(GOOD_SCORES)[:-7] if content is None else json.dumps(content))
    out = tmp_path / "out.jsonl"
    code, text = _invoke(["select", "--scores", scores, "--prompts", pool, "--threshold", 0.5, "--out", out])
    _assert_clean_error(code, text, scores.name, field, out)


DUMP_CASES = {
    "reward_string": ('[{"prompt": "x", "reward": "one", "response_length": 3}]', "reward"),
    "length_string": ('[{"prompt": "x", "reward": 1, "response_length": "long"}]', "response_length"),
    "prompt_missing": ('[{"reward": 1, "response_length": 3}]', "prompt"),
    "truncated": ('[{"prompt": "x", "reward": 1', None),
    "not_a_list": ('{"prompt": "x"}', None),
}


@pytest.mark.parametrize("kind", sorted(DUMP_CASES))
def test_bad_openrlhf_dumps(tmp_path: Path, kind: str) -> None:
    root, records = make_dumps(tmp_path / "dumps")
    content, field = DUMP_CASES[kind]
    (root / "train" / "step_4.json").write_text(content)
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps(records))
    out = tmp_path / "out.jsonl"
    args = ["select", "--openrlhf-samples", root, "--steps-per-epoch", 3, "--prompts", pool, "--top-k", 3]
    code, text = _invoke([*args, "--out", out])
    _assert_clean_error(code, text, "step_4.json", field, out)
    store = tmp_path / "store"
    code, text = _invoke(["import-openrlhf", root, "--steps-per-epoch", 3, "--run", "x", "--store", store])
    _assert_clean_error(code, text, "step_4.json", field, tmp_path / "no-output")
    assert not [p for p in store.rglob("*") if p.is_file()]  # a failed import leaves nothing


def test_huge_prompt_is_fine(tmp_path: Path) -> None:
    """A 4 MB prompt is valid input: selected and written back unchanged."""
    huge = {"id": "big", "prompt": "x" * (4 << 20), "answer": "1"}
    pool = tmp_path / "pool.jsonl"
    pool.write_text(_jsonl([*GOOD_POOL, huge]))
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps([*GOOD_SCORES, {"prompt": huge["prompt"], "score": 0.9}]))
    out = tmp_path / "out.jsonl"
    code, text = _invoke(["select", "--scores", scores, "--prompts", pool, "--threshold", 0.5, "--out", out])
    assert code == 0, text
    assert json.loads(out.read_text().splitlines()[-1]) == huge
