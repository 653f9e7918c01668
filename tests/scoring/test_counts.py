"""EpochCounts: vectorized accumulation against a plain loop, merge, checkpoints, errors; the id map."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from limr.scoring import EpochCounts, EventDataError
from limr.scoring.ids import IdIndex, hash_strings


def _events(rng: np.random.Generator, n: int, ids: list[str], epochs: int) -> pa.Table:
    return pa.table(
        {
            "prompt_id": pa.array([ids[i] for i in rng.integers(0, len(ids), n)], pa.string()),
            "epoch": pa.array(rng.integers(0, epochs, n), pa.int32()),
            "correct": pa.array(rng.random(n) < 0.4),
        }
    )


def _loop_counts(tables: list[pa.Table]) -> dict[tuple[str, int], list[int]]:
    out: dict[tuple[str, int], list[int]] = {}
    for t in tables:
        for pid, ep, ok in zip(*(t.column(c).to_pylist() for c in ("prompt_id", "epoch", "correct")), strict=True):
            c = out.setdefault((pid, ep), [0, 0])
            c[0] += int(ok)
            c[1] += 1
    return out


def _check(counts: EpochCounts, tables: list[pa.Table]) -> None:
    want = _loop_counts(tables)
    ids = counts.ids
    assert len(set(ids)) == len(ids) == len({k[0] for k in want})
    for (pid, ep), (c, t) in want.items():
        row = ids.index(pid)
        assert counts.correct[row, ep] == c and counts.total[row, ep] == t
    assert counts.total.sum() == sum(t.num_rows for t in tables) == counts.events


def test_add_tables_plain_and_dictionary() -> None:
    rng = np.random.default_rng(0)
    ids = [f"p{i}" for i in range(50)] + ["", "ünïcode-id-that-is-long-enough-to-span-words", "x" * 8]
    tables = [_events(rng, 300, ids, 5) for _ in range(4)]
    counts = EpochCounts()
    counts.add_table(tables[0])
    d = tables[1].set_column(0, "prompt_id", pa.compute.dictionary_encode(tables[1].column("prompt_id")))
    counts.add_table(d)
    # Several chunks with different dictionaries.
    multi = pa.concat_tables([tables[2].slice(0, 100), tables[2].slice(100)]).unify_dictionaries()
    multi = multi.set_column(
        0,
        "prompt_id",
        pa.chunked_array([pa.compute.dictionary_encode(c) for c in multi.column("prompt_id").chunks]),
    )
    counts.add_table(multi)
    counts.add_table(tables[3].to_batches()[0])
    _check(counts, tables)
    acc = counts.accuracy()
    assert np.isnan(acc[counts.total == 0]).all()
    seen = counts.total > 0
    np.testing.assert_allclose(acc[seen], counts.correct[seen] / counts.total[seen])


def test_merge_and_checkpoint_roundtrip() -> None:
    rng = np.random.default_rng(1)
    ids = [f"q{i}" for i in range(40)]
    tables = [_events(rng, 200, ids, 3), _events(rng, 200, ids, 7)]
    a, b, whole = EpochCounts(), EpochCounts(), EpochCounts()
    a.add_table(tables[0])
    b.add_table(tables[1])
    for t in tables:
        whole.add_table(t)
    a.merge(b)
    _check(a, tables)
    assert a.events == whole.events == 400
    restored = EpochCounts.from_bytes(whole.to_bytes())
    assert restored == whole and restored.events == whole.events and restored.ids == whole.ids
    restored.add_table(tables[0])  # a restored accumulator keeps working
    assert restored.total.sum() == 600
    with pytest.raises(ValueError, match="magic"):
        EpochCounts.from_bytes(b"nope")
    with pytest.raises(ValueError, match="corrupt"):
        EpochCounts.from_bytes(whole.to_bytes()[:-20])


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            pa.table({"prompt_id": ["a", None], "epoch": pa.array([0, 0], pa.int32()), "correct": [True, False]}),
            "column 'prompt_id' is null at row 1",
        ),
        (
            pa.table({"prompt_id": ["a", "b"], "epoch": pa.array([0, -1], pa.int32()), "correct": [True, False]}),
            "column 'epoch' has invalid value -1 at row 1",
        ),
        (
            pa.table({"prompt_id": ["a"], "epoch": pa.array([0.5]), "correct": [True]}),
            "column 'epoch' has type double",
        ),
        (
            pa.table({"prompt_id": ["a"], "epoch": pa.array([0], pa.int32()), "correct": [1]}),
            "column 'correct' has type int64",
        ),
        (
            pa.table({"prompt_id": [1], "epoch": pa.array([0], pa.int32()), "correct": [True]}),
            "column 'prompt_id' has type int64",
        ),
        (pa.table({"prompt_id": ["a"], "correct": [True]}), "missing column 'epoch'"),
    ],
)
def test_bad_tables_name_where(table: pa.Table, message: str) -> None:
    counts = EpochCounts()
    with pytest.raises(EventDataError, match=f"obj.parquet: {message}"):
        counts.add_table(table, "obj.parquet")
    assert counts.events == 0 and counts.num_prompts == 0


def test_id_index_matches_dict() -> None:
    rng = np.random.default_rng(2)
    pool = [f"id-{i}-" + "z" * int(rng.integers(0, 30)) for i in range(3000)] + ["", "é", "a\x00"]
    index, ref = IdIndex(), {}
    for _ in range(6):
        batch = [pool[i] for i in rng.integers(0, len(pool), 1500)]
        got = index.lookup(pa.array(batch))
        for s in batch:
            ref.setdefault(s, len(ref))
        assert got.tolist() == [ref[s] for s in batch]
    assert index.to_list() == list(ref)
    assert index.lookup(pa.array(["never-seen", pool[0]]), add=False).tolist() == [-1, ref[pool[0]]]


def test_hash_independent_of_batch_and_offset() -> None:
    strings = ["a", "bb", "a" * 17, "ü" * 9, "", "a\x00"]
    alone = np.array([hash_strings(pa.array([s]))[0] for s in strings])
    together = hash_strings(pa.array(["padding"] + strings).slice(1))
    np.testing.assert_array_equal(alone, together)
    assert len(set(alone.tolist())) == len(strings)  # "a" vs "a\0" and "" all differ
