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


def test_hash_of_one_length_ids_equals_the_general_path() -> None:
    """Ids of one length are hashed from strided views in place; mixed lengths by per-string gathers."""
    rng = np.random.default_rng(3)
    for length in (8, 9, 15, 16, 23, 40):
        same = ["".join(chr(97 + int(x)) for x in rng.integers(0, 26, length)) for _ in range(200)]
        h_same = hash_strings(pa.array(same))
        h_mixed = hash_strings(pa.array([*same, "x"]))[:200]  # one other length: the general path
        np.testing.assert_array_equal(h_same, h_mixed)
        np.testing.assert_array_equal(h_same, hash_strings(pa.array(["pad", *same]).slice(1)))


def test_locate_in_reader_threads_then_add_equals_plain_add() -> None:
    """Rows looked up before other objects were added (stale: -1 for ids added since) still count right."""
    from concurrent.futures import ThreadPoolExecutor

    from limr.scoring.tables import summarize_table

    rng = np.random.default_rng(4)
    ids = [f"{i:016x}" for i in range(400)]
    tables = [_events(rng, 500, ids[: 100 * (1 + k // 3)], 4) for k in range(12)]
    counts = EpochCounts()
    fresh = [counts.locate(summarize_table(t)) for t in tables]  # located against an empty index: all -1
    counts.add_summary(fresh[0])
    with ThreadPoolExecutor(3) as pool:
        located = list(pool.map(lambda t: counts.locate(summarize_table(t)), tables[1:]))
    for summary in located:
        counts.add_summary(summary)
    plain = EpochCounts()
    for t in tables:
        plain.add_table(t)
    assert counts == plain
    _check(counts, tables)


def test_duplicate_dictionary_entries_add_up() -> None:
    """A dictionary naming one id twice: locate finds the rows but they repeat, so add falls back to add.at."""
    from limr.scoring.tables import summarize_table

    d = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2, 1], pa.int32()), pa.array(["a", "a", "b"]))
    table = pa.table(
        {"prompt_id": d, "epoch": pa.array([0, 0, 0, 1], pa.int32()), "correct": [True, False, True, True]}
    )
    counts = EpochCounts(["a", "b"])
    summary = counts.locate(summarize_table(table))
    assert summary.located is not None and not summary.distinct
    counts.add_summary(summary)
    assert counts.total.tolist() == [[2, 1], [1, 0]] and counts.correct.tolist() == [[1, 1], [1, 0]]


def test_take_accuracy_equals_accuracy_and_empties_the_accumulator() -> None:
    rng = np.random.default_rng(5)
    counts = EpochCounts()
    counts.add_table(_events(rng, 3000, [f"p{i}" for i in range(300)], 6))
    want = counts.accuracy()
    got = counts.take_accuracy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.nan_to_num(got), np.nan_to_num(want))
    assert counts.events == 0 and counts.num_prompts == 0 and counts.total.size == 0
    counts.add_table(_events(rng, 10, ["z"], 2))  # and it works again from empty
    assert counts.events == 10 and counts.ids == ["z"]


def test_shared_lock_excludes_writers_from_readers() -> None:
    import threading
    import time

    from limr.scoring.locks import SharedLock

    lock, events = SharedLock(), []
    with lock.shared(), lock.shared():  # readers share
        events.append("two readers")

    def writer() -> None:
        with lock.exclusive():
            events.append("writer")

    with lock.shared():
        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.05)
        events.append("reader done")  # the writer waited for us
    t.join(5)
    assert events == ["two readers", "reader done", "writer"]
