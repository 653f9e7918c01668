"""A growing string -> dense index map for prompt ids, vectorized over Arrow string arrays.

Scoring maps every events object's prompt_id dictionary (one entry per distinct prompt in the object) to
global row indices. Over a run that is prompts x epochs lookups (20M for 1M prompts x 20 epochs), so the
lookup is a numpy open-addressing hash table over vectorized string hashes instead of a Python dict.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

_EMPTY = np.uint64(0)
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def hash_strings(arr: pa.Array, seed: int = 0) -> np.ndarray:
    """One of the two 64-bit hashes of `hash_pair` (seed 0 or 1)."""
    return hash_pair(arr)[seed]


def hash_pair(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes (never 0) of each string of a string array without nulls, vectorized.

    Each string is read as little-endian 8-byte words straight from the Arrow data buffer (unaligned
    windows, the last word masked to the string's length), so a string's hash never depends on the other
    strings of the batch. Both hashes mix the same words with different constants.
    """
    arr = _plain(arr)
    n = len(arr)
    if n == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    off_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=off_type, count=n + 1 + arr.offset)[arr.offset :].astype(np.int64)
    raw = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    shortest = int(lengths.min())
    h1 = lengths.astype(np.uint64) * _M1
    h2 = h1 ^ _M3
    max_words = int((lengths.max() + 7) // 8)
    if shortest == int(lengths.max()) and shortest >= 8:
        h1, h2 = _mix_words(h1, h2, _fixed_width_words(raw, int(starts[0]), n, shortest))
        return _finish(h1, h2)
    data = np.zeros(len(raw) + 8, np.uint8)  # 8 bytes of slack so every window stays inside the buffer
    data[: len(raw)] = raw
    windows = np.ndarray(shape=(len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
    with np.errstate(over="ignore"):
        for j in range(max_words):
            if shortest >= 8 * (j + 1):  # every string has a full word here: no masking
                word = windows[starts + 8 * j]
                active = None
            else:
                remaining = lengths - 8 * j
                active = remaining > 0
                word = windows[np.where(active, starts + 8 * j, 0)]
                nbits = (np.clip(remaining, 0, 8) * 8).astype(np.uint64)
                mask = np.where(nbits >= 64, ~np.uint64(0), (np.uint64(1) << (nbits & np.uint64(63))) - np.uint64(1))
                word &= mask
            m1 = (h1 ^ word) * _M2
            m1 ^= m1 >> np.uint64(31)
            m2 = (h2 ^ word) * _M3
            m2 ^= m2 >> np.uint64(29)
            if active is None:
                h1, h2 = m1, m2
            else:
                h1, h2 = np.where(active, m1, h1), np.where(active, m2, h2)
    return _finish(h1, h2)


def _fixed_width_words(raw: np.ndarray, start: int, n: int, length: int) -> list[np.ndarray]:
    """Each word position of n back-to-back strings of one length (>= 8 bytes) as a strided view of `raw`.

    Ids are usually one length (hex digests, "math-00042"): their words are then read in place, with no
    gather and no copy. A last partial word is read as the string's last 8 bytes shifted down, which equals
    the zero-padded word of the general path.
    """
    words = [
        np.ndarray(shape=(n,), dtype="<u8", buffer=raw, offset=start + 8 * j, strides=(length,))
        for j in range(length // 8)
    ]
    tail = length % 8
    if tail:
        last = np.ndarray(shape=(n,), dtype="<u8", buffer=raw, offset=start + length - 8, strides=(length,))
        words.append(last >> np.uint64(8 * (8 - tail)))
    return words


def _mix_words(h1: np.ndarray, h2: np.ndarray, words: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Fold every string's words into both hashes (the same mixing as hash_pair's general path)."""
    with np.errstate(over="ignore"):
        for word in words:
            h1 ^= word
            h1 *= _M2
            h1 ^= h1 >> np.uint64(31)
            h2 ^= word
            h2 *= _M3
            h2 ^= h2 >> np.uint64(29)
    return h1, h2


def _finish(h1: np.ndarray, h2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(over="ignore"):
        h1 *= _M3
        h1 ^= h1 >> np.uint64(29)
        h2 *= _M2
        h2 ^= h2 >> np.uint64(31)
    h1[h1 == _EMPTY] = np.uint64(1)
    return h1, h2


def _plain(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = pa.concat_arrays(arr.chunks) if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def plain_strings(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One plain (non-dictionary, non-chunked) `string` array: the form `IdIndex.lookup` hashes."""
    arr = _plain(arr)
    return arr if pa.types.is_string(arr.type) else arr.cast(pa.string())


class IdIndex:
    """Insert-ordered map of distinct strings to 0..n-1.

    Identity is the pair of independent 64-bit hashes of `hash_pair`: an open-addressing table (linear
    probing, load factor <= 1/2) whose rows hold both hashes and the index, probed a batch at a time with
    vectorized gathers. Two different ids are confused only on a full 128-bit collision (about
    n^2 / 2^129: ~1e-27 for a million ids), the content-hash identity Git and object stores rely on.
    """

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._chunks: list[pa.Array] = []  # the ids in index order
        self._flat: pa.Array | None = None
        self._n = 0
        self._alloc(1 << 10)
        ids = list(ids)
        if ids:
            self.lookup(pa.array(ids, pa.string()), add=True)

    def _alloc(self, cap: int) -> None:
        # One (cap, 3) uint64 table of (h1, h2, idx) rows: a lookup gathers whole 24-byte rows with one `take`
        # (one cache miss per id; numpy gathers from structured dtypes or field views are several times
        # slower). h1 == 0 marks an empty slot.
        self._cap = cap
        self._table = np.zeros((cap, 3), np.uint64)
        self._k1, self._k2 = self._table[:, 0], self._table[:, 1]
        self._idx = self._table[:, 2].view(np.int64)

    def __len__(self) -> int:
        return self._n

    @property
    def ids(self) -> pa.Array:
        """The ids in index order, as one Arrow string array."""
        if self._flat is None:
            self._flat = pa.concat_arrays(self._chunks) if self._chunks else pa.array([], pa.string())
            self._chunks = [self._flat]
        return self._flat

    def to_list(self) -> list[str]:
        ids: list[str] = self.ids.to_pylist()
        return ids

    def reserve(self, n: int) -> None:
        """Size the table for n ids up front (saves rehashing while a large pool is first seen)."""
        if n * 2 > self._cap:
            self._rehash(1 << int(np.ceil(np.log2(n * 2))))

    def lookup(
        self,
        values: pa.Array | pa.ChunkedArray,
        add: bool = True,
        hashes: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Index of each string of `values` (int64); new strings get new indices when `add`, else -1.

        `hashes` is `hash_pair(plain_strings(values))` when the caller computed it already (in a reader thread).
        """
        values = plain_strings(values)
        if values.null_count:
            raise ValueError("ids must not be null")
        if len(values) == 0:
            return np.zeros(0, np.int64)
        h1, h2 = hashes if hashes is not None else hash_pair(values)
        out = self.find(h1, h2)
        miss = np.flatnonzero(out < 0)
        if len(miss) and add:
            base = self._n
            if _all_distinct(h1[miss]):
                # The common case (a Parquet dictionary): the misses are distinct new ids, in order.
                self._append(values.take(pa.array(miss)), h1[miss], h2[miss])
                out[miss] = base + np.arange(len(miss))
            else:
                # Repeats within `values` share one new index, numbered by first occurrence.
                key = np.stack([h1[miss], h2[miss]], axis=1)  # (m, 2)
                _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
                order = np.argsort(first, kind="stable")
                rank = np.empty_like(order)
                rank[order] = np.arange(len(order))
                new_pos = miss[first[order]]
                self._append(values.take(pa.array(new_pos)), h1[new_pos], h2[new_pos])
                out[miss] = base + rank[inverse.reshape(-1)]
        return out

    def _append(self, strings: pa.Array, h1: np.ndarray, h2: np.ndarray) -> None:
        base = self._n
        self._chunks.append(strings)
        self._flat = None
        self._n += len(strings)
        if self._n * 2 > self._cap:
            self._rehash(max(self._cap * 2, 1 << int(np.ceil(np.log2(self._n * 2)))))
        self._insert(h1, h2, np.arange(base, self._n))

    def _rehash(self, cap: int) -> None:
        used = self._k1 != 0
        h1, h2, idx = self._k1[used], self._k2[used], self._idx[used]
        self._alloc(cap)
        self._insert(h1, h2, idx)

    def find(self, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
        """Index of each hashed id, -1 where unknown. Read-only: safe in several threads at once, as long as
        nothing inserts meanwhile (`EpochCounts` guards inserts with an exclusive lock)."""
        table = self._table  # one consistent table, even if a rehash swaps it later
        mask = len(table) - 1
        if self._n == 0:
            return np.full(len(h1), -1, np.int64)
        # First slot for everyone with one gather of whole rows: at load <= 1/2 most ids sit in their home slot.
        slot = (h1 & np.uint64(mask)).astype(np.intp)
        rows = table.take(slot, axis=0)  # (n, 3)
        k1 = rows[:, 0]
        found = (k1 == h1) & (rows[:, 1] == h2)
        out = np.where(found, rows[:, 2].view(np.int64), -1)
        # The rest walk on, compacted: occupied by another id means probe the next slot; empty means unknown.
        pending = np.flatnonzero(~found & (k1 != 0))
        while len(pending):
            slot[pending] = (slot[pending] + 1) & mask
            rows = table.take(slot[pending], axis=0)
            k1 = rows[:, 0]
            hit = (k1 == h1[pending]) & (rows[:, 1] == h2[pending])
            out[pending[hit]] = rows[hit, 2].view(np.int64)
            pending = pending[~hit & (k1 != 0)]
        return out

    def _insert(self, h1: np.ndarray, h2: np.ndarray, idx: np.ndarray) -> None:
        """Insert distinct new ids (their hashes and indices)."""
        mask = self._cap - 1
        slot = (h1 & np.uint64(mask)).astype(np.intp)
        pos = np.arange(len(idx))
        while len(pos):
            free = np.flatnonzero(self._k1[slot] == 0)
            # One winner per free slot without sorting: scatter positions, read back who stayed.
            self._idx[slot[free]] = free
            win = free[self._idx[slot[free]] == free]
            ws = slot[win]
            self._k1[ws], self._k2[ws], self._idx[ws] = h1[win], h2[win], idx[win]
            rest = np.ones(len(pos), bool)
            rest[win] = False
            pos, h1, h2, idx, slot = pos[rest], h1[rest], h2[rest], idx[rest], (slot[rest] + 1) & mask


def _all_distinct(h: np.ndarray) -> bool:
    """True when the uint64 values are pairwise distinct (sorting a copy; only on the insert path)."""
    if len(h) < 2:
        return True
    s = np.sort(h)
    return bool((s[1:] != s[:-1]).all())
