"""Seeded synthetic math problems with graded difficulty, for CPU-sized RL runs.

Every problem has a single integer answer that `limr.reward` verifies, plus a short worked solution
ending in `\\boxed{answer}` that `limr model sft` trains on. Difficulty levels grow in operand size
and number of steps, so a tiny model solves the easy levels and fails the hard ones: RL sees both
rewards. The held-out benchmark is drawn from its own seed stream and never shares a prompt with the
train pool (checked by text, not just by seed), so a benchmark score is not memorised training data.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from limr.atomic import atomic_file
from limr.events.ids import prompt_hash_id

SOURCE = "limr-synthetic"
LEVELS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class SyntheticProblem:
    """One problem: the pool record fields (`id`, `prompt`, `answer`, `source`) plus level and a worked solution."""

    id: str
    prompt: str
    answer: str
    source: str
    level: int
    solution: str

    def to_record(self) -> dict[str, object]:
        return asdict(self)


def _num(rng: random.Random, digits: int) -> int:
    """A number with exactly `digits` digits (1 digit includes 0..9)."""
    lo = 0 if digits == 1 else 10 ** (digits - 1)
    return rng.randint(lo, 10**digits - 1)


def _level1(rng: random.Random) -> tuple[str, int, str]:
    a, b = _num(rng, 1), _num(rng, rng.choice((1, 2)))
    return f"What is {a} + {b}?", a + b, f"{a} + {b} = {a + b}"


def _level2(rng: random.Random) -> tuple[str, int, str]:
    a, b = _num(rng, 2), _num(rng, 2)
    if rng.random() < 0.5:
        return f"What is {a} + {b}?", a + b, f"{a} + {b} = {a + b}"
    return f"What is {a} - {b}?", a - b, f"{a} - {b} = {a - b}"


def _level3(rng: random.Random) -> tuple[str, int, str]:
    if rng.random() < 0.5:
        a, b = _num(rng, 2), _num(rng, 1)
        return f"What is {a} * {b}?", a * b, f"{a} * {b} = {a * b}"
    a, b, c = _num(rng, 2), _num(rng, 2), _num(rng, 2)
    return f"What is {a} + {b} - {c}?", a + b - c, f"{a} + {b} = {a + b}, {a + b} - {c} = {a + b - c}"


def _level4(rng: random.Random) -> tuple[str, int, str]:
    # a*x + b = c with an integer root
    a, x, b = rng.randint(2, 9), rng.randint(-9, 20), rng.randint(1, 50)
    c = a * x + b
    steps = f"{a}x = {c} - {b} = {c - b}, x = {c - b} / {a} = {x}"
    return f"Solve for x: {a}x + {b} = {c}.", x, steps


def _level5(rng: random.Random) -> tuple[str, int, str]:
    if rng.random() < 0.5:
        a, b = _num(rng, 2), _num(rng, 2)
        return f"What is {a} * {b}?", a * b, f"{a} * {b} = {a * b}"
    a, x, b = rng.randint(11, 30), rng.randint(-30, 60), rng.randint(-99, 99)
    c = a * x + b
    sign, mag = ("+", b) if b >= 0 else ("-", -b)
    steps = f"{a}x = {c} {'-' if sign == '+' else '+'} {mag} = {c - b}, x = {c - b} / {a} = {x}"
    return f"Solve for x: {a}x {sign} {mag} = {c}.", x, steps


_GENERATORS: dict[int, Callable[[random.Random], tuple[str, int, str]]] = {
    1: _level1,
    2: _level2,
    3: _level3,
    4: _level4,
    5: _level5,
}


def make_problem(rng: random.Random, level: int) -> SyntheticProblem:
    """Draw one problem of the given difficulty level (1 = easiest, 5 = hardest)."""
    if level not in _GENERATORS:
        raise ValueError(f"level must be one of {LEVELS}, got {level}")
    prompt, answer, steps = _GENERATORS[level](rng)
    solution = f"{steps}. The answer is \\boxed{{{answer}}}."
    return SyntheticProblem(
        id=f"syn-{prompt_hash_id(prompt)}",
        prompt=prompt,
        answer=str(answer),
        source=f"{SOURCE}/level{level}",
        level=level,
        solution=solution,
    )


_ADDITION = re.compile(r"What is (\d+) \+ (\d+)\?")


def column_solution(problem: SyntheticProblem) -> str | None:
    """The problem worked digit by digit (ones column first, carries written out), for additions only.

    Another route to the same answer: a model that answers "7 + 45 = 52" in one go must have memorised that
    sum, while each column step here is a one-digit fact it has seen many times. A warm start that knows both
    routes (`SFTConfig.column_fraction`) gives RL a behaviour to discover: the column route earns more
    reward, on problems it never trained on as well. None for problems that are not an addition.
    """
    m = _ADDITION.fullmatch(problem.prompt)
    if m is None:
        return None
    a, b = int(m.group(1)), int(m.group(2))
    da, db = str(a)[::-1], str(b)[::-1]  # digits, ones first
    steps, carry = [], 0
    for i in range(max(len(da), len(db))):
        x, y = int(da[i]) if i < len(da) else 0, int(db[i]) if i < len(db) else 0
        total = x + y + carry
        steps.append(f"{x} + {y} = {total}" if i == 0 else f"{x} + {y} + {carry} = {total}")
        carry = total // 10
    return f"{', '.join(steps)}, so {a} + {b} = {a + b}. The answer is \\boxed{{{a + b}}}."


class SyntheticConfig(BaseModel):
    """What `make_splits` generates; the same config always gives the same problems."""

    seed: int = Field(0, description="Seed of both streams (train and held-out use derived, distinct seeds).")
    n_train: int = Field(2000, ge=0, description="Problems in the train pool.")
    n_test: int = Field(200, ge=0, description="Problems in the held-out benchmark.")
    levels: tuple[int, ...] = Field(LEVELS, min_length=1, description="Difficulty levels, drawn uniformly.")


def generate(
    n: int, seed: int, levels: Iterable[int] = LEVELS, exclude: set[str] | None = None
) -> list[SyntheticProblem]:
    """`n` distinct problems (by prompt text), levels drawn uniformly, skipping prompts in `exclude`."""
    levels = tuple(levels)
    bad = [lv for lv in levels if lv not in _GENERATORS]
    if bad or not levels:
        raise ValueError(f"levels must be a non-empty subset of {LEVELS}, got {levels}")
    rng = random.Random(seed)
    seen = set(exclude or ())
    out: list[SyntheticProblem] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"cannot draw {n} distinct problems from levels {levels}; ask for fewer")
        p = make_problem(rng, rng.choice(levels))
        if p.prompt in seen:
            continue
        seen.add(p.prompt)
        out.append(p)
    return out


def make_splits(cfg: SyntheticConfig | None = None) -> tuple[list[SyntheticProblem], list[SyntheticProblem]]:
    """(train pool, held-out benchmark), disjoint by prompt text.

    The benchmark is drawn first from its own stream, so its content does not depend on `n_train`:
    growing the train pool never changes the benchmark a model is compared on.
    """
    cfg = cfg or SyntheticConfig()
    test = generate(cfg.n_test, seed=derived_seed(cfg.seed, "test"), levels=cfg.levels)
    train = generate(
        cfg.n_train, seed=derived_seed(cfg.seed, "train"), levels=cfg.levels, exclude={p.prompt for p in test}
    )
    return train, test


def derived_seed(seed: int, stream: str) -> int:
    """A seed for one named stream of problems, distinct per stream, so adding a stream never shifts another."""
    return int(prompt_hash_id(f"{seed}/{stream}"), 16)


def train_seed(seed: int) -> int:
    """The seed of the train stream of `make_splits(SyntheticConfig(seed=seed))`."""
    return derived_seed(seed, "train")


def write_jsonl(problems: Iterable[SyntheticProblem], path: str | Path) -> Path:
    """Write problems as JSONL (one record per line), atomically."""
    path = Path(path)
    with atomic_file(path) as f:
        for p in problems:
            f.write(json.dumps(p.to_record(), ensure_ascii=False) + "\n")
    return path
