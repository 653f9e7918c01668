"""The batch API: parallel workers, a hard per-item timeout, and no hang on pathological LaTeX."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from limr.reward import Reason, RewardPool, RewardPoolConfig, grade_batch, score_batch, score_response

HANGS = "Surely \\boxed{9^{9^{9^{9}}}}"  # sympy tries to evaluate the tower and never returns


@pytest.fixture(scope="module")
def pool() -> Iterator[RewardPool]:
    with RewardPool(RewardPoolConfig(num_workers=2, timeout_s=1.0)) as p:
        yield p


def test_batch_survives_pathological_latex(pool: RewardPool) -> None:
    responses = [f"\\boxed{{{i}}}" for i in range(12)]
    golds = [str(i if i % 3 else i + 1) for i in range(12)]
    responses[4] = HANGS
    responses[9] = "\\boxed{(x+1)^{100000}}"
    before = pool.restarts
    t0 = time.monotonic()
    grades = pool.grade(responses, golds)
    elapsed = time.monotonic() - t0
    assert [g.reason for g in grades] == [
        Reason.TIMEOUT if i in (4, 9) else (Reason.CORRECT if i % 3 else Reason.WRONG) for i in range(12)
    ]
    assert grades[4].score == -1.0 and grades[1].score == 1.0 and grades[0].score == -0.5
    assert pool.restarts - before == 2
    assert elapsed < 30, elapsed  # two 1 s timeouts plus two worker restarts, not a hang
    # the pool is still healthy afterwards
    assert [g.score for g in pool.grade(["\\boxed{\\frac12}"], ["0.5"])] == [1.0]


def test_order_and_unfinished_flags(pool: RewardPool) -> None:
    responses = ["\\boxed{2}", "\\boxed{2}", "no box", "\\boxed{3}"]
    grades = pool.grade(responses, ["2", "2", "2", "4"], finished=[True, False, True, True])
    assert [(g.score, g.reason) for g in grades] == [
        (1.0, Reason.CORRECT),
        (-1.0, Reason.UNFINISHED),
        (-1.0, Reason.NO_BOX),
        (-0.5, Reason.WRONG),
    ]
    assert grades[3].answer == "3"


def test_bad_lengths(pool: RewardPool) -> None:
    with pytest.raises(ValueError, match="gold"):
        pool.grade(["a", "b"], ["1"])
    with pytest.raises(ValueError, match="finished"):
        pool.grade(["a"], ["1"], finished=[True, False])


def test_concurrent_callers_share_a_pool(pool: RewardPool) -> None:
    out: dict[int, list[float]] = {}

    def run(k: int) -> None:
        out[k] = [g.score for g in pool.grade([f"\\boxed{{{k}}}"] * 5, [str(k)] * 5)]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert out == {k: [1.0] * 5 for k in range(3)}


def test_module_level_api_with_the_default_2s_timeout() -> None:
    assert score_response("\\boxed{\\sqrt{8}}", "2\\sqrt{2}") == 1.0
    assert score_response("\\boxed{46}", "46", finished=False) == -1.0
    t0 = time.monotonic()
    assert score_batch([HANGS, "\\boxed{5}"], ["1", "5"]) == [-1.0, 1.0]
    assert time.monotonic() - t0 < 30
    assert grade_batch([HANGS], ["1"])[0].reason == Reason.TIMEOUT
