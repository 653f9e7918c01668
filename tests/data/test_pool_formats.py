"""Pool formats beyond JSON/Parquet: HuggingFace save_to_disk directories and common field names."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from limr.data import PoolError, load_pool
from limr.events.ids import prompt_hash_id
from tests.conftest import shared_file

ROWS = [
    {"problem": "What is 1+1?", "solution": "We add: $1+1=\\boxed{2}$.", "level": "Level 1"},
    {"problem": "Simplify $\\frac{2}{4}$.", "solution": "Divide by 2: $\\boxed{\\frac{1}{2}}$", "level": "Level 2"},
    {"problem": "What is 3+3?", "solution": "6", "level": "Level 1"},
]


def _save_to_disk(path: Path, rows: list[dict], batches: int = 2) -> Path:
    """What `datasets.Dataset.save_to_disk` writes: Arrow IPC stream shards + state.json + dataset_info.json."""
    path.mkdir(parents=True)
    table = pa.Table.from_pylist(rows)
    step = max(1, -(-len(rows) // batches))
    names = []
    for k, start in enumerate(range(0, len(rows), step)):
        name = f"data-{k:05d}-of-{batches:05d}.arrow"
        with pa.OSFile(str(path / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table.slice(start, step))
        names.append(name)
    (path / "state.json").write_text(json.dumps({"_data_files": [{"filename": n} for n in names], "_split": None}))
    (path / "dataset_info.json").write_text(json.dumps({"features": {}}))
    return path


def test_save_to_disk_directory_with_field_mapping(tmp_path: Path) -> None:
    pool = load_pool(_save_to_disk(tmp_path / "ds", ROWS))
    assert len(pool) == 3 and pool.rows == ["row 0", "row 1", "row 2"]
    assert (pool.prompt_field, pool.answer_field) == ("problem", "solution")
    assert [pool.prompt(i) for i in range(3)] == [r["problem"] for r in ROWS]
    assert [pool.answer(i) for i in range(3)] == ["2", "\\frac{1}{2}", "6"]  # boxed answer of a solution
    assert pool.records == ROWS  # records are kept as they came
    assert pool.ids[0] == prompt_hash_id("What is 1+1?")


def test_dataset_dict_picks_train_split(tmp_path: Path) -> None:
    root = tmp_path / "dd"
    _save_to_disk(root / "train", ROWS)
    _save_to_disk(root / "test", ROWS[:1])
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    assert len(load_pool(root)) == 3
    assert len(load_pool(root / "test")) == 1
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["validation", "test"]}))
    with pytest.raises(PoolError, match="no 'train'"):
        load_pool(root)


def test_arrow_file_format_and_bad_dirs(tmp_path: Path) -> None:
    d = tmp_path / "arrowfile"
    d.mkdir()
    table = pa.Table.from_pylist([{"question": "q1", "answer": 1}, {"question": "q2", "answer": 2}])
    with pa.OSFile(str(d / "x.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    pool = load_pool(d)
    assert pool.prompt_field == "question" and [pool.answer(i) for i in range(2)] == ["1", "2"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PoolError, match="without a HuggingFace dataset"):
        load_pool(empty)
    (empty / "junk.arrow").write_bytes(b"nope")
    with pytest.raises(PoolError, match="junk.arrow: not a readable Arrow file"):
        load_pool(empty)


@pytest.mark.parametrize(
    ("record", "prompt_field", "answer"),
    [
        ({"prompt": "p", "answer": "4"}, "prompt", "4"),
        ({"question": "p", "answer": " 4 "}, "question", "4"),
        ({"problem": "p", "solution": "so \\boxed{x^2}"}, "problem", "x^2"),
        ({"context": "p"}, "context", None),
        ({"prompt": "p", "question": "q", "answer": "$5$"}, "prompt", "$5$"),
    ],
)
def test_field_names(tmp_path: Path, record: dict, prompt_field: str, answer: str | None) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(record) + "\n")
    pool = load_pool(path)
    assert pool.prompt_field == prompt_field and pool.prompt(0) == "p" and pool.answer(0) == answer


def test_mixed_field_names_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"question": "a", "answer": "1"}) + "\n" + json.dumps({"prompt": "b"}) + "\n")
    with pytest.raises(PoolError, match="line 2: field 'question' is missing"):
        load_pool(path)


def test_same_prompt_under_distinct_ids_is_reported(tmp_path: Path) -> None:
    recs = [{"id": "a", "prompt": "Q?", "answer": "1"}, {"id": "b", "prompt": " Q? ", "answer": "1"}]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(recs))
    pool = load_pool(path)
    assert len(pool) == 2 and pool.duplicates == []
    assert [(d.prompt_id, d.row, d.first_row) for d in pool.prompt_duplicates] == [("b", "row 1", "row 0")]


def test_math8k_has_one_repeated_prompt() -> None:
    pool = load_pool(shared_file("data", "limr", "math.8k.json"))
    assert len(pool) == 8523 and len(pool.prompt_duplicates) == 1
    assert pool.answer(0) == pool.records[0]["answer"]


def test_cli_inspect_math8k() -> None:
    from typer.testing import CliRunner

    from limr.cli.main import app

    path = shared_file("data", "limr", "math.8k.json")
    res = CliRunner().invoke(app, ["data", "inspect", str(path)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "8,523 records, 1 duplicate" in res.output
    assert "cc8cb950-42aa-4be0-ae14-ee61682398fd" in res.output
    res = CliRunner().invoke(app, ["data", "inspect", str(path), "--json", "--samples", "3"])
    summary = json.loads(res.output)
    assert summary["records"] == 8523 and summary["duplicates"] == 1 and len(summary["sample"]) == 3
    assert summary["fields"]["prompt"]["count"] == 8523


def test_cli_inspect_and_synthetic(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from limr.cli.main import app

    runner = CliRunner()
    res = runner.invoke(app, ["data", "synthetic", "--out", str(tmp_path), "--n-train", "50", "--n-test", "10"])
    assert res.exit_code == 0, res.output
    summary = json.loads(runner.invoke(app, ["data", "inspect", str(tmp_path / "train.jsonl"), "--json"]).output)
    assert summary["records"] == 50 and summary["duplicates"] == 0 and summary["answer_field"] == "answer"
    res = runner.invoke(app, ["data", "inspect", str(tmp_path / "missing.json")])
    assert res.exit_code == 2 and "no such prompts file" in res.output
    res = runner.invoke(app, ["data", "synthetic", "--out", str(tmp_path / "x"), "--levels", "9"])
    assert res.exit_code == 2


def test_load_pool_from_store_uris(tmp_path, s3_uri) -> None:
    """A curated dataset in the store trains without copying: --prompts s3://.../data.jsonl (and file://)."""
    import json

    from limr.data.pool import PoolError, load_pool
    from limr.store import open_store

    lines = [json.dumps({"id": f"p{i}", "prompt": f"1+{i}=?", "answer": str(1 + i)}) for i in range(3)]
    data = ("\n".join(lines) + "\n").encode()
    store = open_store(s3_uri)  # s3://bucket/limr
    store.put("datasets/d/v1/data.jsonl", data)
    pool = load_pool(f"{s3_uri}/datasets/d/v1/data.jsonl")
    assert pool.ids == ["p0", "p1", "p2"] and pool.records[2]["answer"] == "3"

    (tmp_path / "pool.jsonl").write_bytes(data)
    assert load_pool(f"file://{tmp_path}/pool.jsonl").ids == ["p0", "p1", "p2"]

    with pytest.raises(PoolError, match="no such prompts object"):
        load_pool(f"{s3_uri}/datasets/d/v9/data.jsonl")
    store.put("datasets/bad.jsonl", b'{"id": "x", "prompt": "a", "answer": "1"}\nnot json\n')
    with pytest.raises(PoolError, match=r"s3://.*datasets/bad\.jsonl.*line 2"):
        load_pool(f"{s3_uri}/datasets/bad.jsonl")
