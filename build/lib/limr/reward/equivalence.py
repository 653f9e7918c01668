"""Math equivalence of an extracted answer and a gold answer, with HuggingFace `math-verify`.

math-verify's extractors look for LaTeX inside math delimiters or a `\\boxed{}`; handed a bare string
such as `\\frac12` (what the released LIMR code passes) they find nothing and fall back to string
comparison, so `\\frac12` vs `\\dfrac{1}{2}` counts as wrong. We therefore wrap both sides in
`\\boxed{...}` before parsing, which makes the LaTeX extractor parse them into sympy, and fall back to
the plain-expression extractor (`1/2`, `3*x`) and finally to a normalised string comparison.

math-verify's own timeouts use `signal.alarm`, which only works in a process's main thread and would
interrupt unrelated code; they are disabled here (`parsing_timeout=None`, `timeout_seconds=None`) and
`limr.reward.pool` enforces the time limit by running checks in worker processes it can kill.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from limr.reward.rules import last_boxed

# math-verify warns once that its timeout is disabled; we do that on purpose (see module docstring).
logging.getLogger("math_verify").setLevel(logging.ERROR)


@lru_cache(maxsize=4096)
def _parse(answer: str) -> tuple:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    latex = parse(
        "\\boxed{" + answer + "}",
        extraction_config=[LatexExtractionConfig(boxed_match_priority=0)],
        parsing_timeout=None,
    )
    if latex:
        return tuple(latex)
    return tuple(parse(answer, extraction_config=[ExprExtractionConfig()], parsing_timeout=None))


def normalize_gold(gold: str) -> str:
    """The gold answer as a bare expression: the last box of a full solution, without `$` delimiters."""
    boxed = last_boxed(gold)
    text = boxed if boxed is not None else gold
    return text.strip().strip("$").strip()


def _plain(s: str) -> str:
    return "".join(s.split()).replace("\\!", "").replace("\\left", "").replace("\\right", "").lower()


def is_equivalent(answer: str, gold: str) -> bool:
    """Whether `answer` (the content of the last box) equals `gold` mathematically.

    Not symmetric, like math-verify's `verify`: `gold` is the reference (e.g. `x = 5` as a gold accepts `5`).
    """
    from math_verify import verify

    gold = normalize_gold(gold)
    answer = answer.strip()
    if not answer or not gold:
        return False
    if _plain(answer) == _plain(gold):
        return True
    g, a = _parse(gold), _parse(answer)
    if not g or not a:
        return False
    return bool(verify(list(g), list(a), timeout_seconds=None))
