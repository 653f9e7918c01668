"""Prompt pools: load a JSON list, JSONL, Parquet file or HuggingFace `save_to_disk` directory of prompt records.

Every original field of a record is kept unchanged (selection writes records back out as they came in);
the id of a record is `limr.events.ids.prompt_id_of` (its own `id`, else a hash of the stripped prompt).
Records whose id repeats an earlier one are dropped and reported in `Pool.duplicates`, because every
downstream join (events, scores, selections) is keyed by prompt id. Records with their own distinct ids
but the same prompt text are kept (their ids are what the events refer to) and reported in
`Pool.prompt_duplicates`.

Common field names are mapped rather than renamed: the prompt is the first of `prompt`, `question`,
`problem`, `context` that the first record has (`Pool.prompt_field`), the answer the first of `answer`,
`solution` (`Pool.answer_field`); `Pool.prompt(i)` / `Pool.answer(i)` read them, extracting the last
`\\boxed{}` of a worked solution.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from limr.events.ids import prompt_hash_id, prompt_id_of
from limr.jsonl import JsonlError, jsonl_records
from limr.reward.rules import last_boxed

PROMPT_FIELD = "prompt"  # the canonical prompt field
PROMPT_FIELDS = ("prompt", "question", "problem", "context")  # accepted names, in order of preference
ANSWER_FIELDS = ("answer", "solution")


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
    prompt_field: str = PROMPT_FIELD  # the record field holding the prompt (see PROMPT_FIELDS)
    answer_field: str | None = "answer"  # the record field holding the answer; None: the pool has none
    prompt_duplicates: list[Duplicate] = field(default_factory=list)  # same prompt text, distinct ids (kept)
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
        return self.records[i][self.prompt_field]

    def answer(self, i: int) -> str | None:
        """The gold answer of record i: the answer field, or the last `\\boxed{}` of a solution."""
        if self.answer_field is None:
            return None
        value = self.records[i].get(self.answer_field)
        if value is None:
            return None
        text = str(value)
        boxed = last_boxed(text) if "boxed" in text else None
        if boxed is not None:
            return boxed.strip()
        return text.strip()

    def has_own_ids(self) -> bool:
        """True when at least one record carries its own non-empty `id` field."""
        return any(_has_id(r) for r in self.records)


def _has_id(record: dict[str, Any]) -> bool:
    rid = record.get("id")
    return rid is not None and bool(str(rid).strip())


def load_pool(path: str | Path, datasets_url: str | None = None) -> Pool:
    """Load a prompt pool; the format follows the suffix (.json, .jsonl/.ndjson, .parquet), else the content.

    `path` may also be an object-store URI (`s3://bucket/key`, `file:///dir/key`): in a cluster, a curated
    dataset published by the scorer (`s3://.../datasets/NAME/vN/data.jsonl`) trains with no copying by hand;
    or a version read through the dataset API (`dataset://NAME@VERSION` against `datasets_url`, or the URL
    of the version's data): see `limr.data.api_pool`.
    """
    from limr.data.api_pool import is_api_pool

    if is_api_pool(path):
        return _load_pool_api(str(path), datasets_url)
    if isinstance(path, str) and path.startswith(("s3://", "file://")):
        return _load_pool_uri(path)
    path = Path(path)
    if not path.exists():
        raise PoolError(f"{path}: no such prompts file")
    if path.is_dir():
        return build_pool(path, _hf_rows(path))
    return build_pool(path, read_rows(path))


def _load_pool_api(uri: str, datasets_url: str | None) -> Pool:
    import tempfile

    from limr.data.api_client import DatasetAPIError
    from limr.data.api_pool import DatasetRefError, fetch_to_file

    with tempfile.TemporaryDirectory(prefix="limr-pool-") as tmp:
        try:
            local = fetch_to_file(uri, tmp, datasets_url)
        except (DatasetRefError, DatasetAPIError) as e:
            raise PoolError(str(e)) from None
        try:
            pool = build_pool(local, read_rows(local))
        except PoolError as e:
            raise PoolError(str(e).replace(str(local), uri)) from None
    pool.path = Path(uri)
    return pool


def _load_pool_uri(uri: str) -> Pool:
    """Fetch a pool object from a store to a temporary file and load it; errors name the URI."""
    import tempfile

    from limr.store import ObjectNotFound, open_store

    scheme, _, rest = uri.partition("://")
    if scheme == "file":
        store_uri, key = f"file://{Path(rest).parent}", Path(rest).name
    else:
        bucket, _, key = rest.partition("/")
        store_uri = f"{scheme}://{bucket}"
    if not key or key.endswith("/"):
        raise PoolError(f"{uri}: expected STORE_URI/KEY, e.g. s3://bucket/datasets/limr/v1/data.jsonl")
    store = open_store(store_uri)
    with tempfile.TemporaryDirectory(prefix="limr-pool-") as tmp:
        local = Path(tmp) / Path(key).name
        try:
            store.get_to_file(key, str(local))
        except ObjectNotFound:
            raise PoolError(f"{uri}: no such prompts object") from None
        try:
            return build_pool(local, read_rows(local))
        except PoolError as e:
            raise PoolError(str(e).replace(str(local), uri)) from None


def build_pool(path: Path, rows: Iterable[tuple[str, Any]]) -> Pool:
    """Check each (where, record) pair, compute ids, drop duplicate ids. Shared by every file format."""
    records: list[dict[str, Any]] = []
    ids: list[str] = []
    where_of: list[str] = []
    first: dict[str, str] = {}
    first_text: dict[str, tuple[str, str]] = {}  # prompt hash -> (id, where) of its first record
    duplicates: list[Duplicate] = []
    prompt_duplicates: list[Duplicate] = []
    prompt_field: str | None = None
    answer_field: str | None = None
    for where, rec in rows:
        if not isinstance(rec, dict):
            raise PoolError(f"{path}: {where}: expected a JSON object, got {type(rec).__name__}")
        if prompt_field is None:  # the first record decides the field names of the whole pool
            prompt_field = next((k for k in PROMPT_FIELDS if isinstance(rec.get(k), str)), PROMPT_FIELD)
            answer_field = next((k for k in ANSWER_FIELDS if rec.get(k) is not None), None)
        prompt = rec.get(prompt_field)
        if not isinstance(prompt, str):
            got = "missing" if prompt is None else f"a {type(prompt).__name__}"
            raise PoolError(f"{path}: {where}: field {prompt_field!r} is {got}, expected a string")
        if not prompt.strip() and not _has_id(rec):
            raise PoolError(f"{path}: {where}: field {prompt_field!r} is empty and the record has no 'id'")
        pid = prompt_id_of(rec, prompt)
        if pid in first:
            duplicates.append(Duplicate(pid, where, first[pid]))
            continue
        first[pid] = where
        text_key = prompt_hash_id(prompt)
        if text_key in first_text:
            prompt_duplicates.append(Duplicate(pid, where, first_text[text_key][1]))
        else:
            first_text[text_key] = (pid, where)
        records.append(rec)
        ids.append(pid)
        where_of.append(where)
    return Pool(
        path=path,
        records=records,
        ids=ids,
        duplicates=duplicates,
        rows=where_of,
        prompt_field=prompt_field or PROMPT_FIELD,
        answer_field=answer_field,
        prompt_duplicates=prompt_duplicates,
    )


def read_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, record) of each row of a .json/.jsonl/.parquet file (else sniffed); errors name file and line."""
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
        try:  # any value: a record that is not an object gets the pool's own error, with its line
            for lineno, rec in jsonl_records(f, str(path), objects=False):
                yield f"line {lineno}", rec
        except JsonlError as e:
            raise PoolError(str(e)) from None


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


def _hf_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """Rows of a HuggingFace `Dataset.save_to_disk` directory (Arrow files), read with pyarrow alone.

    A `DatasetDict` directory (`dataset_dict.json`) resolves to its `train` split, or its only split;
    point at `<dir>/<split>` for another one.
    """
    dict_file = path / "dataset_dict.json"
    if dict_file.is_file():
        try:
            splits = list(json.loads(dict_file.read_text())["splits"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise PoolError(f"{dict_file}: not a valid dataset_dict.json") from None
        split = "train" if "train" in splits else (splits[0] if len(splits) == 1 else None)
        if split is None:
            raise PoolError(f"{path}: a DatasetDict with splits {splits} and no 'train'; pass {path}/<split>")
        return _hf_rows(path / split)
    state = path / "state.json"
    if state.is_file():
        try:
            names = [f["filename"] for f in json.loads(state.read_text())["_data_files"]]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise PoolError(f"{state}: not a valid datasets state.json") from None
        files = [path / n for n in names]
    else:
        files = sorted(path.glob("*.arrow"))
    if not files:
        raise PoolError(
            f"{path}: is a directory without a HuggingFace dataset (state.json / *.arrow); "
            "expected a .json, .jsonl or .parquet prompts file or a save_to_disk directory"
        )
    return _arrow_rows(files)


def _arrow_rows(files: list[Path]) -> Iterator[tuple[str, Any]]:
    import pyarrow as pa

    row = 0
    for f in files:
        try:
            reader: Any = pa.ipc.open_stream(pa.memory_map(str(f)))  # what save_to_disk writes
        except (pa.ArrowInvalid, OSError):
            try:
                reader = pa.ipc.open_file(pa.memory_map(str(f)))
            except (pa.ArrowInvalid, OSError) as e:
                raise PoolError(f"{f}: not a readable Arrow file: {e}") from None
        batches = (
            reader
            if hasattr(reader, "read_next_batch")
            else (reader.get_batch(i) for i in range(reader.num_record_batches))
        )
        for batch in batches:
            for rec in batch.to_pylist():
                yield f"row {row}", rec
                row += 1
