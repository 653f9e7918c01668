"""Synthetic tasks: seeded, graded, verifiable, and a held-out benchmark disjoint from the train pool."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from limr.tasks.synthetic import LEVELS, SyntheticConfig, generate, make_problem, make_splits, write_jsonl


def _solve(prompt: str) -> int:
    """An independent checker: parse the prompt and compute the answer."""
    m = re.fullmatch(r"Solve for x: (\d+)x ([+-]) (\d+) = (-?\d+)\.", prompt)
    if m:
        a, sign, b, c = int(m[1]), m[2], int(m[3]), int(m[4])
        b = b if sign == "+" else -b
        assert (c - b) % a == 0
        return (c - b) // a
    m = re.fullmatch(r"What is (.+)\?", prompt)
    assert m, prompt
    assert re.fullmatch(r"[\d +*-]+", m[1])
    return eval(m[1])  # only digits and + - * (checked above)


def test_records_have_pool_fields_and_correct_answers() -> None:
    rng = random.Random(3)
    for level in LEVELS:
        for _ in range(200):
            p = make_problem(rng, level)
            rec = p.to_record()
            assert {"id", "prompt", "answer", "source"} <= rec.keys()
            assert rec["id"].startswith("syn-") and rec["source"] == f"limr-synthetic/level{level}"
            assert int(p.answer) == _solve(p.prompt)
            assert p.solution.endswith(f"\\boxed{{{p.answer}}}.")


def test_seeded_and_distinct() -> None:
    a = generate(300, seed=5)
    assert [p.to_record() for p in a] == [p.to_record() for p in generate(300, seed=5)]
    assert [p.prompt for p in a] != [p.prompt for p in generate(300, seed=6)]
    assert len({p.prompt for p in a}) == 300 == len({p.id for p in a})


def test_difficulty_is_graded() -> None:
    """Higher levels have bigger answers and longer solutions on average."""
    rng = random.Random(0)
    stats = []
    for level in LEVELS:
        ps = [make_problem(rng, level) for _ in range(300)]
        stats.append(
            (sum(len(p.answer.lstrip("-")) for p in ps) / len(ps), sum(len(p.solution) for p in ps) / len(ps))
        )
    digits = [s[0] for s in stats]
    assert digits[0] < digits[1] < digits[2] and digits[4] > digits[1]
    assert stats[4][1] > stats[0][1]


def test_splits_are_disjoint_and_benchmark_is_stable() -> None:
    train, test = make_splits(SyntheticConfig(seed=1, n_train=2000, n_test=200))
    assert len(train) == 2000 and len(test) == 200
    assert not {p.prompt for p in train} & {p.prompt for p in test}
    _, test_again = make_splits(SyntheticConfig(seed=1, n_train=50, n_test=200))
    assert [p.id for p in test_again] == [p.id for p in test]  # benchmark independent of train size
    assert {p.level for p in test} == set(LEVELS)


def test_bad_levels_and_impossible_counts() -> None:
    with pytest.raises(ValueError, match="level"):
        generate(3, seed=0, levels=[7])
    with pytest.raises(ValueError, match="distinct"):
        generate(1100, seed=0, levels=[1])  # level 1 has only 10 * 100 prompts


def test_write_jsonl(tmp_path: Path) -> None:
    ps = generate(20, seed=0)
    out = write_jsonl(ps, tmp_path / "d" / "pool.jsonl")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [p.to_record() for p in ps]
    assert [f.name for f in out.parent.iterdir()] == ["pool.jsonl"]


def test_column_solution_works_every_addition_digit_by_digit() -> None:
    """Each column step is a true one-digit fact with the carry in, and the answer is the problem's answer."""
    from limr.tasks.synthetic import column_solution

    rng = random.Random(5)
    seen_carry = False
    for _ in range(300):
        p = make_problem(rng, rng.choice((1, 2, 3)))
        text = column_solution(p)
        if not re.fullmatch(r"What is \d+ \+ \d+\?", p.prompt):
            assert text is None, p.prompt
            continue
        a, b = (int(x) for x in re.findall(r"\d+", p.prompt))
        steps, tail = text.split(", so ")
        assert tail == f"{a} + {b} = {a + b}. The answer is \\boxed{{{p.answer}}}."
        carry, digits = 0, []
        for i, step in enumerate(steps.split(", ")):
            terms, total = step.split(" = ")
            values = [int(t) for t in terms.split(" + ")]
            assert sum(values) == int(total) and values[:2] == [a // 10**i % 10, b // 10**i % 10]
            assert values[2:] == ([] if i == 0 else [carry])
            seen_carry |= carry == 1
            carry, digits = int(total) // 10, [int(total) % 10, *digits]
        assert int("".join(map(str, [carry] * bool(carry) + digits))) == a + b
    assert seen_carry
