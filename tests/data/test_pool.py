"""Prompt pool loading: formats, stable ids, duplicates, and errors that name file and row."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from limr.data import PoolError, load_pool
from limr.events.ids import prompt_hash_id
from tests.conftest import shared_file

RECORDS = [
    {"id": "a", "prompt": "What is 1+1?", "answer": "2", "source": "toy", "extra": {"level": 1}},
    {"prompt": "  What is 2+2? ", "answer": "4"},
    {"id": "c", "prompt": "What is 3+3?", "answer": "6", "source": None},
]


def _write(path: Path, fmt: str, records: list) -> Path:
    if fmt == "json":
        path.write_text(json.dumps(records))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        pq.write_table(pa.Table.from_pylist(records), path)
    return path


@pytest.mark.parametrize("fmt", ["json", "jsonl", "parquet"])
def test_formats_keep_fields_and_ids(tmp_path: Path, fmt: str) -> None:
    records = RECORDS if fmt != "parquet" else [{k: v for k, v in r.items() if k != "extra"} for r in RECORDS]
    pool = load_pool(_write(tmp_path / f"p.{fmt}", fmt, records))
    assert pool.ids == ["a", prompt_hash_id("What is 2+2?"), "c"]
    assert pool.duplicates == []
    if fmt == "parquet":  # Parquet has a fixed schema: absent fields come back as null
        assert pool.records[1]["prompt"] == "  What is 2+2? " and pool.records[1]["id"] is None
    else:
        assert pool.records == records
    assert pool.get("c")["answer"] == "6"
    assert pool.index["a"] == 0


def test_suffixless_file_is_sniffed(tmp_path: Path) -> None:
    assert load_pool(_write(tmp_path / "p", "jsonl", RECORDS)).ids[0] == "a"
    assert load_pool(_write(tmp_path / "q", "json", RECORDS)).ids[2] == "c"


def test_duplicates_are_reported_and_dropped(tmp_path: Path) -> None:
    recs = RECORDS + [{"id": "a", "prompt": "other", "answer": "x"}, {"prompt": "What is 2+2?", "answer": "5"}]
    pool = load_pool(_write(tmp_path / "p.jsonl", "jsonl", recs))
    assert len(pool) == 3 and pool.records[0]["prompt"] == "What is 1+1?"
    assert [(d.prompt_id, d.row, d.first_row) for d in pool.duplicates] == [
        ("a", "line 4", "line 1"),
        (prompt_hash_id("What is 2+2?"), "line 5", "line 2"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"prompt": "x"}, {"prompt": 3}]', "p.json: row 1: field 'prompt' is a int"),
        ('[{"prompt": "x"}, {"answer": "3"}]', "p.json: row 1: field 'prompt' is missing"),
        ('[{"prompt": "x"}, 7]', "p.json: row 1: expected a JSON object"),
        ('[{"prompt": "  "}]', "p.json: row 0: field 'prompt' is empty and the record has no 'id'"),
        ('[{"prompt": "x"},', "p.json: invalid JSON at line 1"),
        ('{"prompt": "x"}', "expected a JSON list"),
    ],
)
def test_bad_json_names_file_and_row(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(PoolError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_pool(path)


def test_bad_jsonl_names_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "x"}\n\n{"prompt": "y"\n')
    with pytest.raises(PoolError, match=r"p.jsonl: line 3: invalid JSON"):
        load_pool(path)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(PoolError, match="no such prompts file"):
        load_pool(tmp_path / "nope.json")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(PoolError, match="bad.parquet: not a readable Parquet file"):
        load_pool(tmp_path / "bad.parquet")


def test_shared_math8k_pool() -> None:
    pool = load_pool(shared_file("data", "limr", "math.8k.json"))
    assert len(pool) == 8523 and pool.duplicates == []
    assert pool.ids[0] == pool.records[0]["id"]
