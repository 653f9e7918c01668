"""One events table reduced to counts per (prompt id, epoch), validated: the per-event work of scoring.

`summarize_table` checks the columns (prompt_id, epoch, correct; types, nulls, epoch bounds) and reduces the table
with a single `np.bincount` over codes local to the table (its prompt_id dictionary x its epoch range x correct).
It touches no shared state, so scorers run it in reader threads; `limr.scoring.counts.EpochCounts` adds the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from limr.scoring.ids import hash_pair, plain_strings

#: An epoch index above this is taken for corrupt data rather than allocating a huge (P, E) array.
MAX_EPOCHS = 100_000


class EventDataError(ValueError):
    """Event rows that cannot be counted; the message names where they came from and the column/row."""


@dataclass(frozen=True)
class TableSummary:
    """One events table reduced to counts per (dictionary entry, epoch): what EpochCounts adds.

    Reducing is the per-event work; it touches no shared state, so scorers run it in reader threads, with the
    id lookup (`EpochCounts.locate`); only adding the counts (`EpochCounts.add_summary`) stays serial.
    """

    rows: int  # events in the table
    lo: int  # first epoch of the table
    dictionary: pa.Array  # (d,) distinct prompt ids referenced
    ok: np.ndarray  # (d, span) correct samples per id and epoch lo..lo+span-1
    tot: np.ndarray  # (d, span) samples
    hashes: tuple[np.ndarray, np.ndarray] | None = None  # hash_pair(dictionary), precomputed
    located: np.ndarray | None = None  # (d,) rows found by EpochCounts.locate, -1 where unknown then
    distinct: bool = False  # located rows all found and pairwise distinct


def summarize_table(table: pa.Table | pa.RecordBatch, where: str = "events", epoch: int | None = None) -> TableSummary:
    """Validate and reduce one events table with a single bincount (thread-safe; see TableSummary).

    `epoch` is the one epoch of every row when the caller knows it (from Parquet statistics); the table then
    needs no epoch column.
    """
    required = ("prompt_id", "correct") if epoch is not None else ("prompt_id", "epoch", "correct")
    for name in required:
        if name not in table.column_names:
            raise EventDataError(f"{where}: missing column {name!r}")
    n = table.num_rows
    if n == 0:
        empty = np.zeros((0, 1), np.int64)
        return TableSummary(0, 0, pa.array([], pa.string()), empty, empty)
    pid = table.column("prompt_id")
    correct_col = table.column("correct")
    checked = [("prompt_id", pid), ("correct", correct_col)]
    if epoch is None:
        epoch_col = table.column("epoch")
        if not pa.types.is_integer(epoch_col.type):
            raise EventDataError(f"{where}: column 'epoch' has type {epoch_col.type}, expected int32")
        checked.append(("epoch", epoch_col))
    if not pa.types.is_boolean(correct_col.type):
        raise EventDataError(f"{where}: column 'correct' has type {correct_col.type}, expected bool")
    for name, col in checked:
        if col.null_count:
            row = _first_null(col)
            raise EventDataError(f"{where}: column {name!r} is null at row {row}")
    if not _is_string_like(pid.type):
        raise EventDataError(f"{where}: column 'prompt_id' has type {pid.type}, expected string")
    if epoch is not None:
        if not 0 <= epoch < MAX_EPOCHS:
            raise EventDataError(f"{where}: column 'epoch' has invalid value {epoch} at row 0")
        lo = hi = int(epoch)
    else:
        mm = pc.min_max(epoch_col).as_py()  # no copy: most objects hold a single epoch
        lo, hi = int(mm["min"]), int(mm["max"])
        if lo < 0 or hi >= MAX_EPOCHS:
            values = _to_numpy(epoch_col)
            bad = int(np.flatnonzero((values < 0) | (values >= MAX_EPOCHS))[0])
            raise EventDataError(f"{where}: column 'epoch' has invalid value {int(values[bad])} at row {bad}")
    codes, dictionary = _dictionary_codes(pid)  # (n,) int32/int64 codes into dictionary
    span = hi - lo + 1
    d = len(dictionary)
    # One code per (dictionary entry, epoch in table, correct): a single bincount counts the table.
    code = np.multiply(codes, 2 * span, dtype=np.int64)  # (n,)
    if span > 1:
        code += (_to_numpy(epoch_col).astype(np.int64) - lo) * 2
    np.add(code, _bools(correct_col), out=code)
    counts = np.bincount(code, minlength=2 * span * d).reshape(d, span, 2)
    ok = counts[:, :, 1]  # (d, span) correct samples
    tot = counts[:, :, 0] + ok  # (d, span) samples
    used = tot[:, 0] > 0 if span == 1 else tot.any(axis=1)  # dictionary entries actually referenced
    if not used.all():
        dictionary, ok, tot = dictionary.filter(pa.array(used)), ok[used], tot[used]
    dictionary = plain_strings(dictionary)
    return TableSummary(n, lo, dictionary, np.ascontiguousarray(ok), tot, hash_pair(dictionary))


def _bools(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A boolean column without nulls as uint8 0/1, unpacked straight from its bitmaps."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    parts = []
    for c in chunks:
        if len(c) == 0:
            continue
        bits = np.frombuffer(c.buffers()[1], np.uint8)
        parts.append(np.unpackbits(bits, bitorder="little", count=c.offset + len(c))[c.offset :])
    return parts[0] if len(parts) == 1 else np.concatenate(parts or [np.zeros(0, np.uint8)])


def _to_numpy(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """An integer or boolean column without nulls as numpy, zero-copy for integers.

    Arrow's own `to_numpy` imports pandas on first use (0.2 s, a few percent of scoring a large run).
    """
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if pa.types.is_boolean(col.type):
        return _bools(col)
    parts = [_int_values(c) for c in chunks if len(c)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts or [np.zeros(0, np.int64)])


def _int_values(arr: pa.Array) -> np.ndarray:
    """The values of an integer array without nulls: a view of its data buffer."""
    dtype = np.dtype(str(arr.type))  # "int32" -> int32; only integer types reach here
    return np.frombuffer(arr.buffers()[1], dtype, count=arr.offset + len(arr))[arr.offset :]


def _first_null(col: pa.ChunkedArray | pa.Array) -> int:
    mask = pc.is_null(col)
    return int(np.flatnonzero(_to_numpy(mask))[0])


def _is_string_like(t: pa.DataType) -> bool:
    value_type = t.value_type if pa.types.is_dictionary(t) else t
    return bool(pa.types.is_string(value_type) or pa.types.is_large_string(value_type))


def _dictionary_codes(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Codes (n,) into one dictionary for a prompt_id column, dictionary-encoded or plain."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if not pa.types.is_dictionary(col.type):
        encoded = pc.dictionary_encode(pa.chunked_array(chunks, col.type)).combine_chunks()
        return _int_values(encoded.indices), encoded.dictionary
    if len(chunks) == 1:
        c = chunks[0]
        return _int_values(c.indices), c.dictionary
    # Several chunks, each with its own dictionary: concatenate dictionaries and offset the codes.
    parts, offset, dicts = [], 0, []
    for c in chunks:
        parts.append(_int_values(c.indices).astype(np.int64) + offset)
        dicts.append(c.dictionary)
        offset += len(c.dictionary)
    return np.concatenate(parts), pa.concat_arrays(dicts)
