"""JSONL output of scores: one object per prompt, a million prompts written in about a second.

A line per prompt formatted in Python (json.dumps of ids and prompts, repr of 21 floats) costs ~10 us, so
~10 s for a million prompts: longer than the scoring itself. Here every column is built as an Arrow string
array with C++ kernels (escaping, float->string casts, dictionary lookups, joins) and the lines of a chunk
are one joined string array whose data buffer is the file content. Chunks of 64k rows bound the memory.

The bytes are those `json.dumps(obj, ensure_ascii=False)` of each object writes: the same keys in the same
order, the same string escapes and Python's shortest round-trip float repr (tests compare byte for byte).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from limr.scoring.ordered import ordered_map
from limr.scoring.result import ScoreResult

ROWS_PER_CHUNK = 65_536

# json.dumps's two-character escapes, backslash first so the others' backslashes are not doubled.
_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\b", "\\b"), ("\f", "\\f"))
_OTHER_CONTROL = np.zeros(256, bool)  # bytes written as \u00XX: rare, left to json.dumps row by row
_OTHER_CONTROL[[*range(0x20)]] = True
_OTHER_CONTROL[[ord(c) for c, _ in _ESCAPES]] = False
_EXPONENT = np.zeros(256, bool)
_EXPONENT[ord("e")] = True
_TOKEN_TABLE = 1 << 14  # most texts of consecutive trajectory values formatted per chunk


def score_chunks(
    result: ScoreResult, rows_per_chunk: int = ROWS_PER_CHUNK, threads: int | None = None
) -> Iterator[pa.Buffer]:
    """The JSONL file as consecutive UTF-8 chunks: `{"prompt_id", "prompt", "score", "trajectory"}` per scored
    prompt, then one object per prompt left out (`score` and `trajectory` null, `left_out` the reason).

    Chunks are formatted `threads` at a time (Arrow's string kernels release the GIL) and yielded in order.
    """
    scores = np.asarray(result.scores, dtype=np.float64)  # (K,)
    traj = result.trajectories  # (K, E), any memory layout
    if traj is not None and not traj.size:
        traj = None

    def chunk(lo: int) -> pa.Buffer:
        hi = min(lo + rows_per_chunk, len(scores))
        ids = result.prompt_ids[lo:hi]
        texts = [result.prompts.get(pid) for pid in ids] if result.prompts else []
        prompt: pa.Array | str = "null"  # no text known
        if any(t is not None for t in texts):
            prompt = _quoted(_escaped(_utf8_array(texts))).fill_null("null")
        ids_text = pa.array(ids, pa.string())  # ids are mostly ASCII: converted fastest this way
        pieces = ['{"prompt_id": "', _escaped(ids_text), '", "prompt": ', prompt, ', "score": ']
        pieces += [_float_reprs(scores[lo:hi]), ', "trajectory": ']
        pieces += ["null"] if traj is None else _trajectory_pieces(traj[lo:hi])
        pieces.append("}\n")
        return _data_buffer(pc.binary_join_element_wise(*_merge_literals(pieces), ""))

    for _, buf in ordered_map(chunk, list(range(0, len(scores), rows_per_chunk)), threads):
        yield buf
    left = list(result.left_out.items())
    for lo in range(0, len(left), rows_per_chunk):
        yield pa.py_buffer(
            "".join(
                json.dumps(
                    {
                        "prompt_id": pid,
                        "prompt": result.prompts.get(pid),
                        "score": None,
                        "trajectory": None,
                        "left_out": reason,
                    },
                    ensure_ascii=False,
                )
                + "\n"
                for pid, reason in left[lo : lo + rows_per_chunk]
            ).encode()
        )


def _utf8_array(texts: list[str | None]) -> pa.Array:
    """A string array of Python strings. Encoding each explicitly is ~10x faster than `pa.array(texts)` for
    non-ASCII text, which also keeps a UTF-8 copy of every string alive (CPython caches it)."""
    return pa.array([None if t is None else t.encode() for t in texts], pa.binary()).view(pa.string())


def _escaped(texts: pa.Array) -> pa.Array:
    """The inside of JSON string literals of `texts`, as `json.dumps(text, ensure_ascii=False)[1:-1]`.

    Backslash, quote and the five named control characters are replaced column-wise, each only if present;
    a text holding another control character (written `\\u00XX`) is rare and left to json.dumps. Looking
    at bytes is exact: in UTF-8, the bytes of multi-byte characters are all >= 0x80.
    """
    data = _string_bytes(texts)
    present = set(np.flatnonzero(np.bincount(data[data < 0x20], minlength=0x20)).tolist())
    present |= {c for c in (ord('"'), ord("\\")) if (data == c).any()}
    escaped = texts
    for char, escape in _ESCAPES:  # backslash first
        if ord(char) in present:
            escaped = pc.replace_substring(escaped, char, escape)
    if present - {ord(c) for c, _ in _ESCAPES}:
        other = _rows_with(texts, _OTHER_CONTROL)
        slow = [json.dumps(t, ensure_ascii=False)[1:-1] for t in texts.take(other).to_pylist()]
        escaped = pc.replace_with_mask(escaped, pa.array(_mask(other, len(texts))), pa.array(slow, pa.string()))
    return escaped


def _quoted(texts: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise('"', texts, '"', "")


def _float_reprs(values: np.ndarray) -> pa.Array:
    """Python's `repr` of finite float64s (what json.dumps writes), mostly from Arrow's float->string cast.

    Both write the shortest decimal that reads back the same double; they differ only in notation: Arrow
    writes integers without ".0" (added here) and switches to exponent notation at other magnitudes, so
    a value that Arrow writes with an exponent, or below 1e-4 in magnitude (repr's exponent range), is
    formatted by repr itself (~1e-4 of uniform [0, 1] scores).
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("scores and trajectories must be finite: JSON has no NaN or infinity")
    text = pc.cast(pa.array(values), pa.string())
    exponent = _mask(_rows_with(text, _EXPONENT), len(values))
    integral = (values == np.trunc(values)) & ~exponent
    if integral.any():
        text = pc.if_else(pa.array(integral), pc.binary_join_element_wise(text, ".0", ""), text)
    magnitude = np.abs(values)
    odd = exponent | ((magnitude < 1e-4) & (magnitude > 0))
    if odd.any():
        text = pc.replace_with_mask(text, pa.array(odd), pa.array([repr(v) for v in values[odd].tolist()]))
    return text


def _trajectory_pieces(traj: np.ndarray) -> list[pa.Array | str]:
    """`[r_0, r_1, ...]` of each row of a (rows, E) block, as pieces to join: literals and string columns.

    Trajectory values are ratios of small counts, so a block has few distinct values (d): all d**g texts of
    g consecutive values are formatted once (d**g <= _TOKEN_TABLE), and a row is E/g lookups in that table
    (20 epochs of k/8 values: 5 lookups of 4 values) instead of E.
    """
    rows, e = traj.shape
    block = np.ascontiguousarray(traj, dtype=np.float64)  # (rows, E) row-major: a copy of a chunk at most
    values, codes = _dictionary_codes(block.reshape(-1))
    reprs = _float_reprs(values)  # (d,)
    codes = codes.reshape(rows, e)  # (rows, E)
    d, g = len(reprs), 1
    while g < e and d ** (g + 1) <= _TOKEN_TABLE:
        g += 1
    tables: dict[int, pa.Array] = {}
    pieces: list[pa.Array | str] = ["["]
    for k in range(0, e, g):
        width = min(g, e - k)
        if width not in tables:
            tables[width] = _value_tuples(reprs, width)
        token = codes[:, k : k + width] @ (d ** np.arange(width - 1, -1, -1))  # (rows,) base-d number
        pieces += [tables[width].take(token), ", "]
    pieces[-1] = "]"
    return pieces


def _dictionary_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values (d,) and each value's index among them (n,), bit for bit (-0.0 is not 0.0).

    Looking values up in a set found from a sample is ~3x faster than Arrow's dictionary_encode, which grows
    its set as it goes; values the sample missed are added in a second pass.
    """
    flat = pa.array(values)
    dictionary = np.unique(values[:: max(1, len(values) // 4096)])
    for _ in range(2):
        codes = pc.index_in(flat, value_set=pa.array(dictionary))
        if not codes.null_count:
            return dictionary, codes.to_numpy()
        missed = values[np.asarray(pc.is_null(codes))]
        dictionary = np.concatenate([dictionary, np.unique(missed)])
    encoded = pc.dictionary_encode(flat)  # np.unique merged 0.0 with -0.0 in `missed`: rare
    return encoded.dictionary.to_numpy(), encoded.indices.to_numpy()


def _value_tuples(reprs: pa.Array, width: int) -> pa.Array:
    """`"a, b, ..."` for every tuple of `width` values, at index sum(code_i * d**(width-1-i))."""
    d, table = len(reprs), reprs
    for _ in range(width - 1):
        i = np.arange(len(table) * d)
        table = pc.binary_join_element_wise(table.take(i // d), reprs.take(i % d), ", ")
    return table


def _merge_literals(pieces: list[pa.Array | str]) -> list[pa.Array | str]:
    merged: list[pa.Array | str] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


def _offsets(texts: pa.Array) -> np.ndarray:
    return np.frombuffer(texts.buffers()[1], np.int32, count=len(texts) + 1, offset=texts.offset * 4)


def _string_bytes(texts: pa.Array) -> np.ndarray:
    """The UTF-8 bytes of all values of a string array, one after another (a view)."""
    offsets, data = _offsets(texts), texts.buffers()[2]
    if data is None:
        return np.zeros(0, np.uint8)
    return np.frombuffer(data, np.uint8)[offsets[0] : offsets[-1]]


def _rows_with(texts: pa.Array, bytes_: np.ndarray) -> np.ndarray:
    """Rows whose text holds one of the (ASCII) bytes marked in `bytes_` (256 bools), from a byte search."""
    offsets = _offsets(texts)
    at = np.flatnonzero(bytes_[_string_bytes(texts)]) + offsets[0]
    return np.unique(np.searchsorted(offsets, at, side="right") - 1)


def _mask(rows: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    mask[rows] = True
    return mask


def _data_buffer(lines: pa.Array) -> pa.Buffer:
    """The bytes of a string array without nulls: its lines one after another."""
    if lines.null_count:
        raise ValueError("a JSON line came out null")
    offsets = _offsets(lines)
    return lines.buffers()[2][int(offsets[0]) : int(offsets[-1])]
