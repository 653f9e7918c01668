"""Streaming accumulation of reward events into prompt x epoch counts.

Memory is two int32 (P, E) arrays plus the id map: it grows with prompts x epochs, never with events.
Each events table is reduced with one `np.bincount` over codes local to the table (its prompt_id dictionary
x its epoch range x correct), then added to the global arrays, so the per-event work is a few vectorized
integer ops and the per-prompt work (id lookup) happens once per table, not once per event.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from limr.scoring.ids import IdIndex, hash_pair, plain_strings
from limr.scoring.locks import SharedLock

#: Samples of one prompt in one epoch: int32 halves the accumulator (and the fresh memory a large run touches)
#: against int64; 2^31 samples of one prompt in one epoch is far beyond any run.
COUNT_DTYPE = np.int32

#: An epoch index above this is taken for corrupt data rather than allocating a huge (P, E) array.
MAX_EPOCHS = 100_000

_MAGIC = b"LIMRCNT1"


class EventDataError(ValueError):
    """Event rows that cannot be counted; the message names where they came from and the column/row."""


class EpochCounts:
    """Per prompt and epoch: how many samples were seen (`total`) and how many were correct (`correct`).

    Prompt rows are in first-seen order (`ids`); arrays grow on demand. `accuracy()` is NaN where a prompt
    has no samples in an epoch, which is what `limr.algo.lim.fill_missing_epochs` expects.
    """

    def __init__(
        self,
        prompt_ids: list[str] | None = None,
        num_epochs: int = 0,
        expected_prompts: int = 0,
        expected_epochs: int = 0,
    ) -> None:
        """`expected_*` are capacity hints only (no effect on results): they avoid regrowing large arrays."""
        self._index = IdIndex(prompt_ids or [])
        self._index.reserve(expected_prompts)
        self._epochs = int(num_epochs)
        n = len(self._index)
        # Stored epoch-major, (E_cap, P_cap): an events object usually holds one epoch, and adding it is then a
        # 1-D scatter into one contiguous row. `correct`/`total` expose (P, E) views.
        self._alloc(max(self._epochs, expected_epochs, 1), max(n, expected_prompts, 16))
        self.events = 0  # rows counted
        self._lock = SharedLock()  # readers: `locate` in reader threads; writer: inserts into the index

    # ---- shape and views -------------------------------------------------------------------------------
    @property
    def num_prompts(self) -> int:
        return len(self._index)

    @property
    def num_epochs(self) -> int:
        return self._epochs

    @property
    def ids(self) -> list[str]:
        return self._index.to_list()

    @property
    def ids_array(self) -> pa.Array:
        return self._index.ids

    @property
    def correct(self) -> np.ndarray:
        """(P, E) int32 correct samples (a view; do not keep it across further adds)."""
        return self._correct[: self.num_prompts, : self._epochs]

    @property
    def total(self) -> np.ndarray:
        """(P, E) int32 samples."""
        return self._total[: self.num_prompts, : self._epochs]

    def index_of(self, prompt_ids: list[str] | pa.Array) -> np.ndarray:
        """Row of each id, -1 for unknown ids."""
        arr = prompt_ids if isinstance(prompt_ids, pa.Array) else pa.array(prompt_ids, pa.string())
        return self._index.lookup(arr, add=False)

    def accuracy(self) -> np.ndarray:
        """(P, E) float64 share of correct samples; NaN where the prompt has no samples in that epoch.

        A column-major view (epoch-major storage): `limr.algo.lim` works column by column on it.
        """
        out = np.empty((self._epochs, self.num_prompts))  # epoch-major like the counts: contiguous rows
        for k in range(self._epochs):
            self._accuracy_row(k, out[k])
        return out.T  # (P, E) view

    def _accuracy_row(self, k: int, out: np.ndarray) -> np.ndarray:
        """Epoch k's accuracy of every prompt into `out` (P,), NaN where it has no samples."""
        total = self._t[k, : len(out)]
        out.fill(np.nan)
        np.divide(self._c[k, : len(out)], total, out=out, where=total > 0)
        return out

    def take_accuracy(self) -> np.ndarray:
        """`accuracy()` computed into the counts' own memory, which it consumes: the accumulator is empty after.

        Epoch k's correct and total rows sit side by side, exactly where epoch k's float64 accuracy row goes,
        so a one-shot scorer (`score_run`) gets its (P, E) matrix without touching fresh memory (on a VM,
        first-touching a 1M x 20 matrix cost more than computing it).
        """
        p, e = self.num_prompts, self._epochs
        rows = self._buf.reshape(self._buf.shape[0], -1).view(np.float64)  # (E_cap, P_cap) over the same bytes
        row = np.empty(p)
        for k in range(e):
            rows[k, :p] = self._accuracy_row(k, row)  # overwrites epoch k's counts only, after reading them
        out = rows[:e, :p].T
        self._alloc(1, 16)
        self._index = IdIndex()
        self._epochs = 0
        self.events = 0
        return out

    @property
    def _correct(self) -> np.ndarray:
        return self._c.T  # (P_cap, E_cap) view

    @property
    def _total(self) -> np.ndarray:
        return self._t.T

    def _alloc(self, cap_e: int, cap_p: int) -> None:
        # One (E_cap, 2, P_cap) buffer: epoch k's correct and total rows are adjacent (see take_accuracy).
        self._buf = np.zeros((cap_e, 2, cap_p), COUNT_DTYPE)
        self._c = self._buf[:, 0]  # (E_cap, P_cap) views, each row contiguous
        self._t = self._buf[:, 1]

    def _reserve(self, prompts: int, epochs: int) -> None:
        cap_e, cap_p = self._c.shape
        if prompts <= cap_p and epochs <= cap_e:
            return
        # Prompts grow by half (a pool is seen in its first epoch, then stays); epochs in steps of 4, since
        # every spare epoch column costs P x 8 bytes.
        new_p = cap_p if prompts <= cap_p else max(prompts, cap_p * 3 // 2)
        new_e = cap_e if epochs <= cap_e else -(-epochs // 4) * 4
        old = self._buf
        self._alloc(new_e, new_p)
        self._buf[: old.shape[0], :, : old.shape[2]] = old

    # ---- adding events ---------------------------------------------------------------------------------
    def add_table(self, table: pa.Table | pa.RecordBatch, where: str = "events") -> int:
        """Count the rows of a table with columns prompt_id (string, plain or dictionary), epoch, correct.

        Returns the number of rows added. Raises EventDataError naming `where` for nulls, negative or
        absurd epochs, or missing/mistyped columns; nothing is added then.
        """
        return self.add_summary(summarize_table(table, where))

    def locate(self, summary: TableSummary) -> TableSummary:
        """The summary with its ids' rows as the index stands now (-1: not known yet).

        Safe in reader threads while another thread adds: probing the index is the per-prompt random-access
        work, and done here it runs beside the reading of other objects instead of on the merging thread.
        Rows found stay valid (indices never change); `add_summary` resolves the -1s.
        """
        if summary.rows == 0 or summary.hashes is None:
            return summary
        with self._lock.shared():
            rows = self._index.find(*summary.hashes)
        return replace(summary, located=rows, distinct=bool(rows.min() >= 0) and _distinct(rows))

    def add_summary(self, summary: TableSummary) -> int:
        """Add a table reduced by `summarize_table` (possibly in another thread); returns its row count.

        Only this merging thread changes the arrays; the index changes (under the exclusive lock) only when
        the object brings ids that `locate` did not find.
        """
        if summary.rows == 0:
            return 0
        lo, hi = summary.lo, summary.lo + summary.ok.shape[1] - 1
        rows, distinct = summary.located, summary.distinct
        if rows is None or not distinct:
            with self._lock.exclusive():
                rows = self._index.lookup(summary.dictionary, hashes=summary.hashes)
            distinct = _distinct(rows)
        self._reserve(len(self._index), hi + 1)
        self._epochs = max(self._epochs, hi + 1)
        # Distinct dictionary entries can name the same prompt (an unnormalized dictionary): add.at then.
        if distinct:
            for k in range(hi - lo + 1):
                self._c[lo + k][rows] += summary.ok[:, k]
                self._t[lo + k][rows] += summary.tot[:, k]
        else:
            np.add.at(self._correct[:, lo : hi + 1], rows, summary.ok)
            np.add.at(self._total[:, lo : hi + 1], rows, summary.tot)
        self.events += summary.rows
        return summary.rows

    def add_counts(self, prompt_ids: list[str] | pa.Array, correct: np.ndarray, total: np.ndarray) -> None:
        """Add (P', E') count arrays for the given ids (used by merge and by imports)."""
        correct = np.asarray(correct, np.int64)
        total = np.asarray(total, np.int64)
        if correct.shape != total.shape or correct.ndim != 2:
            raise ValueError(f"correct {correct.shape} and total {total.shape} must be equal 2-D shapes")
        arr = prompt_ids if isinstance(prompt_ids, pa.Array) else pa.array(prompt_ids, pa.string())
        if len(arr) != correct.shape[0]:
            raise ValueError(f"{len(arr)} ids for {correct.shape[0]} rows")
        if (correct < 0).any() or (correct > total).any():
            raise ValueError("counts must satisfy 0 <= correct <= total")
        with self._lock.exclusive():
            rows = self._index.lookup(arr)
        e = correct.shape[1]
        self._reserve(len(self._index), e)
        self._epochs = max(self._epochs, e)
        np.add.at(self._correct[:, :e], rows, correct)
        np.add.at(self._total[:, :e], rows, total)
        self.events += int(total.sum())

    def merge(self, other: EpochCounts) -> EpochCounts:
        """Add another accumulator's counts into this one (ids aligned by value); returns self."""
        self.add_counts(other.ids_array, other.correct, other.total)
        self.events += other.events - int(other.total.sum())  # keep the row count exact
        return self

    # ---- checkpoints -----------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Exact serialization: magic, JSON header, ids (Arrow IPC), the two count arrays (npy, int32)."""
        buf = io.BytesIO()
        buf.write(_MAGIC)
        header = json.dumps({"prompts": self.num_prompts, "epochs": self._epochs, "events": self.events}).encode()
        buf.write(len(header).to_bytes(8, "little"))
        buf.write(header)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, pa.schema([("id", pa.string())])) as w:
            w.write_table(pa.table({"id": self.ids_array}))
        ids_bytes = sink.getvalue().to_pybytes()
        buf.write(len(ids_bytes).to_bytes(8, "little"))
        buf.write(ids_bytes)
        np.save(buf, np.ascontiguousarray(self.correct), allow_pickle=False)
        np.save(buf, np.ascontiguousarray(self.total), allow_pickle=False)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> EpochCounts:
        buf = io.BytesIO(data)
        if buf.read(len(_MAGIC)) != _MAGIC:
            raise ValueError("not an EpochCounts checkpoint (bad magic)")
        try:
            header = json.loads(buf.read(int.from_bytes(buf.read(8), "little")))
            ids_bytes = buf.read(int.from_bytes(buf.read(8), "little"))
            ids = pa.ipc.open_stream(ids_bytes).read_all().column("id")
            correct = np.load(buf, allow_pickle=False)
            total = np.load(buf, allow_pickle=False)
        except (ValueError, pa.ArrowException, json.JSONDecodeError) as e:
            raise ValueError(f"corrupt EpochCounts checkpoint: {e}") from None
        shape = (header["prompts"], header["epochs"])
        if correct.shape != shape or total.shape != shape or len(ids) != shape[0]:
            raise ValueError(f"corrupt EpochCounts checkpoint: shapes {correct.shape}/{total.shape} != {shape}")
        out = cls(num_epochs=shape[1])
        out._index.lookup(ids)
        if len(out._index) != shape[0]:
            raise ValueError("corrupt EpochCounts checkpoint: duplicate ids")
        out._reserve(shape[0], shape[1])
        out._correct[: shape[0], : shape[1]] = correct
        out._total[: shape[0], : shape[1]] = total
        out.events = int(header["events"])
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EpochCounts):
            return NotImplemented
        return (
            self.ids == other.ids
            and self._epochs == other._epochs
            and np.array_equal(self.correct, other.correct)
            and np.array_equal(self.total, other.total)
        )


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


_scratch = threading.local()


def _distinct(rows: np.ndarray) -> bool:
    """True when no row repeats: scatter positions into a per-thread scratch array, read back (no sort)."""
    if len(rows) == 0:
        return True
    need = int(rows.max()) + 1
    mark = getattr(_scratch, "mark", None)
    if mark is None or len(mark) < need:
        mark = _scratch.mark = np.empty(max(need, 2 * (0 if mark is None else len(mark))), np.int32)
    pos = np.arange(len(rows), dtype=np.int32)
    mark[rows] = pos
    return bool((mark[rows] == pos).all())


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
