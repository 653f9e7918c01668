"""The vectorized JSONL writer writes, byte for byte, what `json.dumps` of each object writes."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from limr.cli.common import write_atomic_bytes
from limr.scoring.output import score_chunks
from limr.scoring.result import ScoreResult

TRICKY = [
    'say "hi"',
    "\\frac{1}{2} + \\sqrt{x}",
    "line one\nline two\r\nend",
    "tab\there",
    "bell\b form\f",
    'ctrl \x01 \x00 \x1f \x0b \x0e mixed with \\ and "',
    "del \x7f and separators \u2028 \u2029",
    "é, 中文, 😀 emoji",
    "",
    "plain",
]


def reference_lines(result: ScoreResult) -> str:
    """What the writer must produce: json.dumps of each object (the per-row writer it replaces)."""
    traj = result.trajectories
    rows = traj.tolist() if traj is not None and traj.size else [None] * len(result)
    out = []
    for pid, score, row in zip(result.prompt_ids, result.scores.tolist(), rows, strict=True):
        obj = {"prompt_id": pid, "prompt": result.prompts.get(pid), "score": score, "trajectory": row}
        out.append(json.dumps(obj, ensure_ascii=False) + "\n")
    for pid, reason in result.left_out.items():
        obj = {"prompt_id": pid, "prompt": result.prompts.get(pid), "score": None, "trajectory": None}
        out.append(json.dumps(obj | {"left_out": reason}, ensure_ascii=False) + "\n")
    return "".join(out)


def written(result: ScoreResult, rows_per_chunk: int = 65_536) -> str:
    return b"".join(bytes(c) for c in score_chunks(result, rows_per_chunk)).decode("utf-8")


def make_result(ids, scores, traj=None, prompts=None, left_out=None) -> ScoreResult:
    traj = None if traj is None else np.asarray(traj, dtype=np.float64)
    return ScoreResult(
        prompt_ids=list(ids),
        scores=np.asarray(scores, dtype=np.float64),
        trajectories=traj,
        r_avg=None,
        epochs=0 if traj is None else traj.shape[1],
        left_out=dict(left_out or {}),
        prompts=dict(prompts or {}),
    )


def assert_same(result: ScoreResult, rows_per_chunk: int = 65_536) -> list[dict]:
    got, want = written(result, rows_per_chunk), reference_lines(result)
    assert got == want
    lines = got.split("\n")  # not splitlines(): U+2028 in a JSON string is not a line break
    assert lines.pop() == "" and len(lines) == len(result) + len(result.left_out)
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("rows_per_chunk", [3, 65_536])
def test_tricky_ids_and_prompts(rows_per_chunk: int) -> None:
    ids = [f"id-{t}" for t in TRICKY] + ["", "no text", 'q"\\']
    prompts = {pid: f"prompt {t}" for pid, t in zip(ids, TRICKY, strict=False)} | {"": "", 'q"\\': "\x01"}
    prompts["not scored"] = "unused \n"
    rng = np.random.default_rng(0)
    traj = rng.integers(0, 9, (len(ids), 4)) / 8
    left = {'left \x02 \\ "x"': "no events", "id-tab\there": "no samples in epoch(s) 1, 2", "gone é": "no events"}
    prompts["gone é"] = "text of a left-out prompt\t"
    result = make_result(ids, rng.random(len(ids)), traj, prompts, left)
    objs = assert_same(result, rows_per_chunk)
    assert [o["prompt_id"] for o in objs] == ids + list(left)
    assert [o["prompt"] for o in objs[: len(ids)]] == [prompts.get(i) for i in ids]
    assert objs[len(ids) - 2]["prompt"] is None  # unknown text: null
    assert objs[-1] == {"prompt_id": "gone é", "prompt": prompts["gone é"], "score": None, "trajectory": None,
                        "left_out": "no events"}  # fmt: skip
    assert [o["trajectory"] for o in objs[: len(ids)]] == traj.tolist()


def test_no_prompt_texts_and_no_known_ids() -> None:
    for prompts in ({}, {"other": "x"}):
        objs = assert_same(make_result(["a", "b"], [0.5, 0.25], [[0.5], [1.0]], prompts))
        assert [o["prompt"] for o in objs] == [None, None] and objs[1]["trajectory"] == [1.0]  # E = 1


def test_scores_round_trip_bit_for_bit() -> None:
    special = [1e-05, 0.1, -0.1, 1.0, 0.0, -0.0, -1e-05, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300,
               9.99999e-5, 1e-4, 0.00012345, 1e15, 9999999999999998.0, 1e16, 1e22, 12345678901234567.0,
               -13463053035.748682, 1.7976931348623157e308, -3.0, 0.9999999999999999, 1 / 3]  # fmt: skip
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2**64, 5000, dtype=np.uint64).view(np.float64)
    scores = np.concatenate([special, bits[np.isfinite(bits)], rng.random(5000), -rng.random(500) * 1e-6])
    result = make_result([str(i) for i in range(len(scores))], scores)
    objs = assert_same(result)
    for obj, want in zip(objs, scores.tolist(), strict=True):
        assert isinstance(obj["score"], float) and struct.pack("<d", obj["score"]) == struct.pack("<d", want)
        assert obj["trajectory"] is None  # published scores have no trajectories


def test_non_finite_values_are_refused() -> None:
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="finite"):
            written(make_result(["a", "b"], [0.5, bad]))
        with pytest.raises(ValueError, match="finite"):
            written(make_result(["a", "b"], [0.5, 0.5], [[0.5, 1.0], [bad, 0.0]]))


def test_atomic_file_write(tmp_path: Path) -> None:
    result = make_result(["a", "b\n"], [0.5, 1.0], [[0.5, 0.25], [1.0, 1.0]], {"a": "x"}, {"c": "no events"})
    out = tmp_path / "sub" / "scores.jsonl"
    assert write_atomic_bytes(out, score_chunks(result, rows_per_chunk=1)) == out.stat().st_size
    assert out.read_text("utf-8") == reference_lines(result)

    def failing():
        yield from score_chunks(result, rows_per_chunk=1)
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        write_atomic_bytes(tmp_path / "failed.jsonl", failing())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]  # no file, no temp file left


def test_trajectory_layouts_and_values() -> None:
    rng = np.random.default_rng(2)
    p, e = 1000, 20
    epoch_major = rng.integers(0, 9, (e, p)) / 8  # (E, P): how the scorer accumulates
    ids = [f"{i:016x}" for i in range(p)]
    scores = rng.random(p)
    for traj in (epoch_major.T, np.ascontiguousarray(epoch_major.T), epoch_major.T[:, ::3]):
        result = make_result(ids, scores, prompts={ids[0]: "x"})
        result.trajectories = traj  # as given: no copy into another layout
        objs = assert_same(result, rows_per_chunk=333)
        assert np.array_equal(np.array([o["trajectory"] for o in objs]), traj)
    # Arbitrary floats (many distinct values, tiny, negative) are written exactly too.
    odd = np.concatenate([rng.normal(size=(p, 3)), np.full((p, 1), 1e-7), np.full((p, 1), -0.0)], axis=1)
    objs = assert_same(make_result(ids, scores, odd), rows_per_chunk=100)
    assert np.array_equal(np.array([o["trajectory"] for o in objs]), odd)


def test_rare_trajectory_values_and_signed_zeros() -> None:
    # Values a sample of the block misses, 0.0 and -0.0 among them, still get their own text.
    traj = np.full((10_000, 2), 0.5)
    traj[1, 1], traj[3, 1], traj[2, 1], traj[9_999, 0] = 0.0, -0.0, 0.3, 1e-7
    objs = assert_same(make_result([str(i) for i in range(len(traj))], np.zeros(len(traj)), traj))
    assert [struct.pack("<d", v) for v in objs[3]["trajectory"]] == [struct.pack("<d", v) for v in (0.5, -0.0)]


def test_only_left_out_prompts() -> None:
    result = make_result([], [], np.zeros((0, 3)), {"a": "A"}, {"a": "no events", "b": "no events"})
    objs = assert_same(result)
    assert [o["left_out"] for o in objs] == ["no events", "no events"] and objs[0]["prompt"] == "A"


def test_large_run_spans_chunks() -> None:
    rng = np.random.default_rng(3)
    p = 66_000  # more than one 64k chunk
    ids = [f"{i:016x}" for i in rng.integers(0, 2**63, p)]
    traj = (rng.integers(0, 9, (8, p)) / 8).T
    prompts = {pid: f"What is {i} + \\frac{{1}}{{2}}?\n" for i, pid in enumerate(ids[::2])}
    assert_same(make_result(ids, rng.random(p), traj, prompts, {"x": "no events"}))
