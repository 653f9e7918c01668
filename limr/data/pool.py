"""Prompt pools: load a JSON list, JSONL or Parquet file of prompt records with stable ids.

Every original field of a record is kept unchanged (selection writes records back out as they came in);
the id of a record is `limr.events.ids.prompt_id_of` (its own `id`, else a hash of the stripped prompt).
Records whose id repeats an earlier one are dropped and reported in `Pool.duplicates`, because every
downstream join (events, scores, selections) is keyed by prompt id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from limr.events.ids import prompt_id_of

PROMPT_FIELD = "prompt"


class PoolError(ValueError):
    """A prompts file that cannot be loaded; the message names the file and the row/field."""


@dataclass(frozen=True)
class Duplicate:
    """A record dropped because its id repeats the record at `first_row`."""

    prompt_id: str
    row: str  # where the dropped record is, e.g. "row 12" or "line 13"
    first_row: str


@dataclass
class Pool:
    """Prompt records of one file, in file order, with their ids (duplicates dropped)."""

    path: Path
    records: list[dict[str, Any]]  # the original records, every field kept
    ids: list[str]  # ids[i] is the stable prompt id of records[i]
    duplicates: list[Duplicate] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)  # rows[i]: where records[i] came from ("row 3", "line 4")
    _index: dict[str, int] | None = field(default=None, init=False, repr=False)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def index(self) -> dict[str, int]:
        """prompt id -> position in `records`."""
        if self._index is None:
            self._index = {pid: i for i, pid in enumerate(self.ids)}
        return self._index

    def get(self, prompt_id: str) -> dict[str, Any] | None:
        i = self.index.get(prompt_id)
        return None if i is None else self.records[i]

    def prompt(self, i: int) -> str:
        return self.records[i][PROMPT_FIELD]

    def has_own_ids(self) -> bool:
        """True when at least one record carries its own non-empty `id` field."""
        return any(_has_id(r) for r in self.records)


def _has_id(record: dict[str, Any]) -> bool:
    rid = record.get("id")
    return rid is not None and bool(str(rid).strip())


def load_pool(path: str | Path) -> Pool:
    """Load a prompt pool; the format follows the suffix (.json, .jsonl/.ndjson, .parquet), else the content."""
    path = Path(path)
    if not path.exists():
        raise PoolError(f"{path}: no such prompts file")
    if path.is_dir():
        raise PoolError(f"{path}: is a directory, expected a .json, .jsonl or .parquet prompts file")
    return build_pool(path, _read_rows(path))


def build_pool(path: Path, rows: Iterable[tuple[str, Any]]) -> Pool:
    """Check each (where, record) pair, compute ids, drop duplicate ids. Shared by every file format."""
    records: list[dict[str, Any]] = []
    ids: list[str] = []
    where_of: list[str] = []
    first: dict[str, str] = {}
    duplicates: list[Duplicate] = []
    for where, rec in rows:
        if not isinstance(rec, dict):
            raise PoolError(f"{path}: {where}: expected a JSON object, got {type(rec).__name__}")
        prompt = rec.get(PROMPT_FIELD)
        if not isinstance(prompt, str):
            got = "missing" if prompt is None else f"a {type(prompt).__name__}"
            raise PoolError(f"{path}: {where}: field {PROMPT_FIELD!r} is {got}, expected a string")
        if not prompt.strip() and not _has_id(rec):
            raise PoolError(f"{path}: {where}: field {PROMPT_FIELD!r} is empty and the record has no 'id'")
        pid = prompt_id_of(rec, prompt)
        if pid in first:
            duplicates.append(Duplicate(pid, where, first[pid]))
            continue
        first[pid] = where
        records.append(rec)
        ids.append(pid)
        where_of.append(where)
    return Pool(path=path, records=records, ids=ids, duplicates=duplicates, rows=where_of)


def _read_rows(path: Path) -> Iterator[tuple[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet_rows(path)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_rows(path)
    if suffix == ".json":
        return _json_rows(path)
    # Unknown suffix: sniff. Parquet starts with PAR1; a JSON list with '['; anything else is JSONL.
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(b"PAR1"):
        return _parquet_rows(path)
    if head.lstrip().startswith(b"["):
        return _json_rows(path)
    return _jsonl_rows(path)


def _json_rows(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise PoolError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise PoolError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if isinstance(data, dict):
        # {"data": [...]} / {"train": [...]}: accept a single list-valued field, as exported by many tools.
        lists = [k for k, v in data.items() if isinstance(v, list)]
        if len(lists) != 1:
            raise PoolError(f"{path}: expected a JSON list of prompt records (or an object with one list field)")
        data = data[lists[0]]
    if not isinstance(data, list):
        raise PoolError(f"{path}: expected a JSON list of prompt records, got {type(data).__name__}")
    return ((f"row {i}", rec) for i, rec in enumerate(data))


def _jsonl_rows(path: Path) -> Iterator[tuple[str, Any]]:
    with open(path, encoding="utf-8") as f:
        try:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise PoolError(f"{path}: line {lineno}: invalid JSON at column {e.colno}: {e.msg}") from None
                yield f"line {lineno}", rec
        except UnicodeDecodeError as e:
            raise PoolError(f"{path}: not UTF-8 text ({e.reason})") from None


def _parquet_rows(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise PoolError(f"{path}: not a readable Parquet file: {e}") from None
    row = 0
    for batch in pf.iter_batches(batch_size=65536):
        for rec in batch.to_pylist():
            yield f"row {row}", rec
            row += 1
