"""The reward rule, table-driven: equivalent forms, last box wins, each format failure."""

from __future__ import annotations

import pytest

from limr.reward import Reason, grade, is_equivalent, last_boxed
from limr.reward.rules import find_boxes, has_repetition, is_garbled, odd_char_fraction

C, W, F = 1.0, -0.5, -1.0

# (response, gold, finished, score, reason)
CASES = [
    # equivalent forms count as correct
    ("So the sum is \\boxed{46}.", "46", True, C, Reason.CORRECT),
    ("\\boxed{\\dfrac{1}{2}}", "\\frac12", True, C, Reason.CORRECT),  # raw-LaTeX passing gets this wrong
    ("\\boxed{\\frac12}", "\\dfrac{1}{2}", True, C, Reason.CORRECT),
    ("\\boxed{0.5}", "\\frac{1}{2}", True, C, Reason.CORRECT),
    ("\\boxed{1/2}", "0.5", True, C, Reason.CORRECT),
    ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", True, C, Reason.CORRECT),
    ("\\boxed{\\sqrt{200}}", "10\\sqrt{2}", True, C, Reason.CORRECT),
    ("\\boxed{\\frac{\\sqrt3}{2}}", "\\frac{\\sqrt{3}}{2}", True, C, Reason.CORRECT),
    ("\\boxed{\\{2, 1\\}}", "\\{1,2\\}", True, C, Reason.CORRECT),
    ("\\boxed{2, 1}", "1,2", True, C, Reason.CORRECT),
    ("\\boxed{[1, 2)}", "[1,2)", True, C, Reason.CORRECT),
    ("\\boxed{(-\\infty, 3]}", "(-\\infty,3]", True, C, Reason.CORRECT),
    ("\\boxed{50\\%}", "50", True, C, Reason.CORRECT),
    ("\\boxed{0.5}", "50\\%", True, C, Reason.CORRECT),
    ("\\boxed{(x+1)^2}", "x^2+2x+1", True, C, Reason.CORRECT),
    ("\\boxed{x^2 + 2x + 1}", "(x+1)^2", True, C, Reason.CORRECT),
    ("\\boxed{x = 5}", "5", True, C, Reason.CORRECT),
    ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "(3,\\pi/2)", True, C, Reason.CORRECT),
    ("\\boxed{12{,}000}", "12000", True, C, Reason.CORRECT),
    ("\\boxed{\\text{(C)}}", "C", True, C, Reason.CORRECT),
    ("\\boxed{3.0}", "3", True, C, Reason.CORRECT),
    ("$\\boxed{-7}$", "$-7$", True, C, Reason.CORRECT),
    ("\\fbox{9}", "9", True, C, Reason.CORRECT),
    ("答案是 \\boxed{9}", "9", True, C, Reason.CORRECT),  # letters of any script are normal text
    ("Therefore \\boxed{7}", "We find $x = \\boxed{7}$.", True, C, Reason.CORRECT),  # gold given as a solution
    # wrong but well formatted
    ("\\boxed{47}", "46", True, W, Reason.WRONG),
    ("\\boxed{(1, 2)}", "[1,2)", True, W, Reason.WRONG),
    ("\\boxed{x^2 + 2x}", "(x+1)^2", True, W, Reason.WRONG),
    ("\\boxed{0.333}", "\\frac13", True, W, Reason.WRONG),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{3}", True, W, Reason.WRONG),
    # the last box wins
    ("First \\boxed{3}, no wait: \\boxed{4}", "4", True, C, Reason.CORRECT),
    ("First \\boxed{4}, no wait: \\boxed{3}", "4", True, W, Reason.WRONG),
    ("\\boxed{1} \\boxed{2} \\boxed{3} \\boxed{4}", "4", True, C, Reason.CORRECT),  # 4 boxes are allowed
    # format errors
    ("The answer is 46.", "46", True, F, Reason.NO_BOX),
    ("The answer is \\boxed{46", "46", True, F, Reason.UNCLOSED_BOX),
    ("\\boxed{4} and then \\boxed{\\frac{1}{2}", "4", True, F, Reason.UNCLOSED_BOX),
    ("\\boxed{}", "46", True, F, Reason.EMPTY_BOX),
    ("\\boxed{ }", "46", True, F, Reason.EMPTY_BOX),
    ("\\boxed{1} \\boxed{2} \\boxed{3} \\boxed{4} \\boxed{5}", "5", True, F, Reason.TOO_MANY_BOXES),
    ("\\boxed{46}", "46", False, F, Reason.UNFINISHED),
    ("\\boxed{46} " + "\ufffd\ufffd\x07" * 3, "46", True, F, Reason.GARBLED),
    ("\\boxed{46} 🙂🙂🙂🙂🙂", "46", True, F, Reason.GARBLED),
    ("Let me check. " * 5 + "\\boxed{46}", "46", True, F, Reason.REPETITION),
    ("\\boxed{46}" + "=" * 25, "46", True, F, Reason.REPETITION),
    # near misses of the format rules are fine
    ("Let me check. " * 4 + "\\boxed{46}", "46", True, C, Reason.CORRECT),
    ("\\boxed{46} ∞ ≤ ± × π °", "46", True, C, Reason.CORRECT),
]


@pytest.mark.parametrize(("response", "gold", "finished", "score", "reason"), CASES)
def test_reward_table(response: str, gold: str, finished: bool, score: float, reason: Reason) -> None:
    g = grade(response, gold, finished)
    assert (g.score, g.reason) == (score, reason), g


def test_raw_latex_parsing_is_what_we_fix() -> None:
    """math-verify on bare LaTeX (the released LIMR code) misses \\frac12 == \\dfrac{1}{2}; we do not."""
    from math_verify import parse, verify

    assert not verify(
        parse("\\frac12", parsing_timeout=None), parse("\\dfrac{1}{2}", parsing_timeout=None), timeout_seconds=None
    )
    assert is_equivalent("\\dfrac{1}{2}", "\\frac12")


@pytest.mark.parametrize(
    ("text", "count", "last"),
    [
        ("no box", 0, None),
        ("\\boxed{1}", 1, "1"),
        ("\\boxed{\\frac{1}{2}} and \\boxed{\\{1, 2\\}}", 2, "\\{1, 2\\}"),
        ("\\boxed {x}", 1, "x"),
        ("\\boxed{a \\\\ b}", 1, "a \\\\ b"),
        ("\\boxed{1} \\boxed{2", 2, None),
    ],
)
def test_find_boxes(text: str, count: int, last: str | None) -> None:
    assert find_boxes(text).count == count
    assert find_boxes(text).last == last == last_boxed(text)


def test_garbled_threshold() -> None:
    assert odd_char_fraction("") == 0.0
    assert odd_char_fraction("ab\ufffd\ufffd") == 0.5
    assert not is_garbled("a" * 7 + "\ufffd" * 3)  # 30% is not more than 30%
    assert is_garbled("a" * 6 + "\ufffd" * 3)
    assert not is_garbled("\\int_0^1 x^2\\,dx = \\tfrac{1}{3}\n\t$$\\{a|b\\}$$ ~ `code` #1 @ & € £")


def test_repetition_scan() -> None:
    assert has_repetition("abcde" * 5)
    assert not has_repetition("abcde" * 4)
    assert not has_repetition("abcd" * 9)  # 4-character loop, and its 8-character doubling repeats < 5 times
    assert has_repetition("abcd" * 10)  # "abcdabcd" five times in a row
    assert has_repetition("x" * 10 + "hello world! " * 5 + "y")
    assert not has_repetition("".join(str(i) for i in range(3000)))
    long_loop = "".join(chr(65 + (i * 7) % 26) for i in range(400))
    assert has_repetition("intro " + long_loop * 5)
