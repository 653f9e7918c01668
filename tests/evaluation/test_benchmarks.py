"""Benchmark loading and the paper's sampling protocol (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from limr.evaluation.benchmarks import PROTOCOLS, BenchmarkError, load_benchmark, protocol_for
from limr.evaluation.harness import EvalConfig, _checked_texts, _deviations, write_result
from limr.tasks.synthetic import SyntheticConfig, make_splits
from tests.conftest import shared_file


def test_paper_protocol() -> None:
    assert (PROTOCOLS["math500"].n, PROTOCOLS["math500"].temperature) == (1, 0.0)
    assert (PROTOCOLS["aime24"].n, PROTOCOLS["aime24"].temperature) == (4, 0.4)
    assert (PROTOCOLS["amc23"].n, PROTOCOLS["amc23"].temperature) == (4, 0.4)


def test_shared_benchmarks_load() -> None:
    data = shared_file("data", "eval", "math500.jsonl").parent
    sizes = {name: len(load_benchmark(name, data).questions) for name in ("math500", "aime24", "amc23")}
    assert sizes == {"math500": 500, "aime24": 30, "amc23": 40}
    b = load_benchmark("math500", data, limit=20)
    assert len(b.questions) == 20 and b.questions[0].answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert len({q.id for q in b.questions}) == 20


def test_synthetic_is_the_held_out_split(tmp_path: Path) -> None:
    b = load_benchmark("synthetic", None)
    train, test = make_splits(SyntheticConfig(seed=0, n_train=500, n_test=200))
    assert [q.id for q in b.questions] == [p.id for p in test]
    assert not {q.question for q in b.questions} & {p.prompt for p in train}
    # a synthetic.jsonl in the data directory wins
    (tmp_path / "synthetic.jsonl").write_text(json.dumps({"prompt": "What is 1 + 1?", "answer": "2"}) + "\n")
    assert [q.answer for q in load_benchmark("synthetic", tmp_path).questions] == ["2"]


def test_field_mapping_and_errors(tmp_path: Path) -> None:
    rows = [{"problem": "p1", "solution": "so $\\boxed{\\frac12}$"}, {"question": "p2", "answer": "$7$"}]
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    b = load_benchmark("mine", tmp_path)
    assert [(q.question, q.answer) for q in b.questions] == [("p1", "\\frac12"), ("p2", "7")]
    assert b.protocol == protocol_for("synthetic") == PROTOCOLS["math500"]  # unknown names: greedy, one sample
    assert load_benchmark("mine", tmp_path, protocol="reward").protocol.answer_check == "reward"
    with pytest.raises(BenchmarkError, match="unknown protocol"):
        load_benchmark("mine", tmp_path, protocol="nope")
    (tmp_path / "bad.jsonl").write_text('{"question": "q"}\n')
    with pytest.raises(BenchmarkError, match="bad.jsonl: line 1: needs"):
        load_benchmark("bad", tmp_path)
    (tmp_path / "broken.jsonl").write_text("{\n")
    with pytest.raises(BenchmarkError, match="broken.jsonl: line 1: invalid JSON"):
        load_benchmark("broken", tmp_path)
    with pytest.raises(BenchmarkError, match="no file"):
        load_benchmark("math500", tmp_path)
    with pytest.raises(BenchmarkError, match="needs --data-dir"):
        load_benchmark("math500", None)


def test_config_validation_and_atomic_write(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="repeat"):
        EvalConfig(model=tmp_path, benchmarks=["math500", "math500"])
    path = write_result({"a": 1}, tmp_path / "r" / "out.json")
    assert json.loads(path.read_text()) == {"a": 1} and [p.name for p in path.parent.iterdir()] == ["out.json"]


def test_paper_protocol_grades_the_last_box_finished_or_not(tmp_path: Path) -> None:
    """The released eval.py checks the last box of every response, truncated or not, with no format rules."""
    from types import SimpleNamespace

    from limr.reward.grade import grade

    def grade_batch(texts: list[str], golds: list[str], finished: list[bool]) -> list:  # in-process: no time limit
        return [grade(t, g, f) for t, g, f in zip(texts, golds, finished, strict=True)]

    (tmp_path / "b.jsonl").write_text(json.dumps({"question": "q", "answer": "\\frac12"}) + "\n")
    texts = ["x \\boxed{1} then \\boxed{\\dfrac{1}{2}} and more", "so " * 40 + "\\boxed{0.5}", "no box"]
    samples = [(0, SimpleNamespace(text=t, truncated=True)) for t in texts]
    paper, reward = (load_benchmark("b", tmp_path, protocol=p) for p in ("paper", "reward"))
    checked, finished = _checked_texts(paper, samples)
    assert finished == [True, True, True] and checked[:2] == ["\\boxed{\\dfrac{1}{2}}", "\\boxed{0.5}"]
    assert [g.score for g in grade_batch(checked, ["\\frac12"] * 3, finished)] == [1.0, 1.0, -1.0]
    checked, finished = _checked_texts(reward, samples)  # the training reward: truncated = unfinished
    assert [g.score for g in grade_batch(checked, ["\\frac12"] * 3, finished)] == [-1.0, -1.0, -1.0]
    assert _deviations(EvalConfig(model=tmp_path, benchmarks=["b"]), [paper]) == []
    devs = _deviations(EvalConfig(model=tmp_path, benchmarks=["b"], limit=5, max_tokens=100), [paper])
    assert len(devs) == 2 and "limit 5" in devs[0] and "max_tokens 100" in devs[1]
    with pytest.raises(ValueError, match="unknown protocol"):
        EvalConfig(model=tmp_path, protocol="nope")
