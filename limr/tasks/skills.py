"""A prompt pool mixed from named arithmetic skills, with a held-out set drawn with the same mix.

The LIMR experiment needs a pool whose prompts differ the way MATH's did for the paper's model: some the
warm start already solves, some it cannot learn within the run, and a learnable middle whose accuracy rises
with training. For the tiny model's level-1 warm start those are skills of the same kind (additions of
growing width, subtractions, small products), so learning the middle (working an addition column by column)
carries over to held-out problems of the same skills. Shares are given per skill; `docs/experiment.md` says
which skill plays which part and how that was measured (on the pool, never on the held-out set).

The held-out set is drawn first, from its own seed stream and with the same shares, and the pool excludes
its prompts by text, so no held-out problem is ever in a pool (nor in any subset curated from it).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from pydantic import BaseModel, Field, model_validator

from limr.events.ids import prompt_hash_id
from limr.tasks.synthetic import SOURCE, SyntheticProblem

Draw = Callable[[random.Random], tuple[str, int, str]]


def _num(rng: random.Random, digits: int) -> int:
    lo = 0 if digits == 1 else 10 ** (digits - 1)
    return rng.randint(lo, 10**digits - 1)


def _add(da: int, db: int) -> Draw:
    def draw(rng: random.Random) -> tuple[str, int, str]:
        a, b = _num(rng, da), _num(rng, db)
        return f"What is {a} + {b}?", a + b, f"{a} + {b} = {a + b}"

    return draw


def _sub(da: int, db: int) -> Draw:
    def draw(rng: random.Random) -> tuple[str, int, str]:
        a, b = _num(rng, da), _num(rng, db)
        return f"What is {a} - {b}?", a - b, f"{a} - {b} = {a - b}"

    return draw


def _mul(da: int, db: int) -> Draw:
    def draw(rng: random.Random) -> tuple[str, int, str]:
        a, b = _num(rng, da), _num(rng, db)
        return f"What is {a} * {b}?", a * b, f"{a} * {b} = {a * b}"

    return draw


def _add3(rng: random.Random) -> tuple[str, int, str]:
    a, b, c = _num(rng, 1), _num(rng, 1), _num(rng, 1)
    return f"What is {a} + {b} + {c}?", a + b + c, f"{a} + {b} = {a + b}, {a + b} + {c} = {a + b + c}"


# skill -> (generator, the synthetic level it is closest to). `add-AxB`: an A-digit plus a B-digit number.
SKILLS: dict[str, tuple[Draw, int]] = {
    "add-1x1": (_add(1, 1), 1),
    "add-1x2": (_add(1, 2), 1),
    "add-2x1": (_add(2, 1), 2),
    "add-2x2": (_add(2, 2), 2),
    "add-1x3": (_add(1, 3), 2),
    "add3-1": (_add3, 3),
    "sub-1x1": (_sub(1, 1), 2),
    "sub-2x1": (_sub(2, 1), 2),
    "sub-2x2": (_sub(2, 2), 2),
    "mul-1x1": (_mul(1, 1), 3),
    "mul-2x1": (_mul(2, 1), 3),
    "mul-2x2": (_mul(2, 2), 5),
}


# skill -> (operator, digits of each operand): the family of distinct prompts a skill can draw from.
_FAMILY: dict[str, tuple[str, tuple[int, ...]]] = {
    "add-1x1": ("+", (1, 1)), "add-1x2": ("+", (1, 2)), "add-2x1": ("+", (2, 1)), "add-2x2": ("+", (2, 2)),
    "add-1x3": ("+", (1, 3)), "add3-1": ("+", (1, 1, 1)), "sub-1x1": ("-", (1, 1)), "sub-2x1": ("-", (2, 1)),
    "sub-2x2": ("-", (2, 2)), "mul-1x1": ("*", (1, 1)), "mul-2x1": ("*", (2, 1)), "mul-2x2": ("*", (2, 2)),
}  # fmt: skip


class SkillMixError(ValueError):
    """A mix that asks a skill for more distinct problems than it has; the message names the field."""


def skill_family(skill: str) -> set[str]:
    """Every distinct prompt `skill` can draw (e.g. 900 for add-1x2: 10 one-digit x 90 two-digit numbers)."""
    import itertools

    op, digits = _FAMILY[skill]
    ranges = [range(0 if d == 1 else 10 ** (d - 1), 10**d) for d in digits]
    return {f"What is {f' {op} '.join(map(str, xs))}?" for xs in itertools.product(*ranges)}


def make_skill_problem(rng: random.Random, skill: str) -> SyntheticProblem:
    if skill not in SKILLS:
        raise ValueError(f"unknown skill {skill!r}; known: {', '.join(SKILLS)}")
    draw, level = SKILLS[skill]
    prompt, answer, steps = draw(rng)
    return SyntheticProblem(
        id=f"syn-{prompt_hash_id(prompt)}",
        prompt=prompt,
        answer=str(answer),
        source=f"{SOURCE}/{skill}",
        level=level,
        solution=f"{steps}. The answer is \\boxed{{{answer}}}.",
    )


def check_known_skills(names: Iterable[str], field: str) -> None:
    """A ValueError naming `field` and the known skills if any of `names` is not one (one message everywhere)."""
    unknown = sorted(set(names) - set(SKILLS))
    if unknown:
        raise ValueError(f"{field}: unknown skill(s) {unknown}; known: {', '.join(SKILLS)}")


def check_skill_counts(counts: dict[str, int], field: str) -> dict[str, int]:
    """Known skill names, each with at least one problem; errors name `field` (a config's or an option's)."""
    check_known_skills(counts, field)
    bad = {k: n for k, n in counts.items() if n < 1}
    if bad:
        raise ValueError(f"{field}: give each skill at least 1 problem, got {bad}")
    return counts


class SkillMix(BaseModel):
    """A pool of `size` prompts and a held-out set of `held_out` problems, both mixed by `shares`."""

    size: int = Field(300, ge=1, description="Prompts in the pool.")
    held_out: int = Field(200, ge=0, description="Held-out problems (never in any pool), same mix.")
    shares: dict[str, float] = Field(description="Skill -> share of the pool (normalised to sum 1).")
    held_out_shares: dict[str, float] | None = Field(
        None, description="Skill -> share of the held-out set (default: `shares`), e.g. only the learnable skills."
    )
    seed: int = Field(0, description="Seed of both streams (held-out and pool use derived, distinct seeds).")

    @model_validator(mode="after")
    def _check(self) -> SkillMix:
        for field, shares in (("shares", self.shares), ("held_out_shares", self.held_out_shares)):
            if shares is None:
                continue
            check_known_skills(shares, field)
            if not shares or any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
                raise ValueError(f"{field}: give at least one skill with a positive share, none negative")
        return self

    def counts(self, total: int, held_out: bool = False) -> dict[str, int]:
        """Problems per skill for `total` problems (largest remainders, so they sum to `total`)."""
        shares = self.held_out_shares if held_out and self.held_out_shares else self.shares
        s = sum(shares.values())
        exact = {k: total * v / s for k, v in shares.items() if v > 0}
        out = {k: int(x) for k, x in exact.items()}
        for k in sorted(exact, key=lambda k: out[k] - exact[k])[: total - sum(out.values())]:
            out[k] += 1
        return out


def draw_skills(counts: dict[str, int], seed: int, exclude: set[str], field: str, why: str) -> list[SyntheticProblem]:
    """`counts[skill]` distinct problems per skill, none in `exclude`, shuffled; deterministic in `seed`.

    Asking for more than a skill has left is a `SkillMixError` naming `field` (and `why` says what was excluded).
    """
    rng = random.Random(seed)
    seen = set(exclude)
    out: list[SyntheticProblem] = []
    for skill, n in counts.items():
        left = len(skill_family(skill) - seen)
        if n > left:
            raise SkillMixError(
                f"field {field!r}: asks for {n} {skill!r} problems, but only {left} distinct ones are left "
                f"({len(skill_family(skill))} in the skill, minus {why})"
            )
        got, attempts = 0, 0
        while got < n:
            attempts += 1
            if attempts > 200 * n + 1000:
                raise ValueError(f"skill {skill!r}: cannot draw {n} distinct problems; lower its share or the size")
            p = make_skill_problem(rng, skill)
            if p.prompt in seen:
                continue
            seen.add(p.prompt)
            out.append(p)
            got += 1
    random.Random(seed + 1).shuffle(out)
    return out


def make_mix(
    mix: SkillMix, held_out_exclude: set[str] | None = None
) -> tuple[list[SyntheticProblem], list[SyntheticProblem]]:
    """(pool, held-out): disjoint by prompt text; the held-out set does not depend on the pool size.

    `held_out_exclude`: prompts the held-out set must not contain either (e.g. the warm start's SFT problems,
    so held-out accuracy measures what carries over to problems the model never trained on).
    """
    held_seed = int(prompt_hash_id(f"{mix.seed}/held-out"), 16)
    held_counts = mix.counts(mix.held_out, held_out=True)
    exclude = set(held_out_exclude or ())
    why = "the excluded ones (the warm start's SFT)"
    held_out = draw_skills(held_counts, held_seed, exclude, "pool.mix.held_out", why)
    pool_seed = int(prompt_hash_id(f"{mix.seed}/pool"), 16)
    why = f"the {mix.held_out} held-out problems (pool.mix.held_out)"
    pool = draw_skills(mix.counts(mix.size), pool_seed, {p.prompt for p in held_out}, "pool.mix.size", why)
    return pool, held_out
