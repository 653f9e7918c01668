"""The LIMR reward rule for one response, in-process and without a time limit.

1.0 correct, -0.5 well formatted but wrong, -1.0 format error. `limr.reward.pool` runs this same
function in worker processes to add the 2 s limit; call `grade` directly only on trusted input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum

from limr.reward.equivalence import is_equivalent
from limr.reward.rules import MAX_BOXES, find_boxes, has_repetition, is_garbled

CORRECT = 1.0
WRONG = -0.5
FORMAT_ERROR = -1.0


class Reason(StrEnum):
    """Why a response got its score (logged next to rewards, counted in metrics)."""

    CORRECT = "correct"
    WRONG = "wrong"
    UNFINISHED = "unfinished"  # hit the length limit
    GARBLED = "garbled"  # > 30% odd characters
    REPETITION = "repetition"  # a 5+ character chunk repeated 5+ times in a row
    NO_BOX = "no_box"  # no \boxed{} at all
    UNCLOSED_BOX = "unclosed_box"  # the last \boxed{ is never closed
    EMPTY_BOX = "empty_box"  # the last box is \boxed{}
    TOO_MANY_BOXES = "too_many_boxes"  # 5 or more boxes
    TIMEOUT = "timeout"  # checking took longer than the limit
    CHECK_FAILED = "check_failed"  # the checker crashed (e.g. ran out of memory)


_SCORES = {Reason.CORRECT: CORRECT, Reason.WRONG: WRONG}


@dataclass(frozen=True)
class Grade:
    """A scored response: the reward, why, and the extracted answer (None when there is none)."""

    score: float
    reason: Reason
    answer: str | None = None

    @classmethod
    def of(cls, reason: Reason, answer: str | None = None) -> Grade:
        return cls(_SCORES.get(reason, FORMAT_ERROR), reason, answer)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["reason"] = str(self.reason)
        return d


def check_format(response: str, finished: bool = True) -> Grade | str:
    """The extracted answer when the response is well formed, else the format-error Grade."""
    if not finished:
        return Grade.of(Reason.UNFINISHED)
    if is_garbled(response):
        return Grade.of(Reason.GARBLED)
    if has_repetition(response):
        return Grade.of(Reason.REPETITION)
    boxes = find_boxes(response)
    if boxes.count == 0:
        return Grade.of(Reason.NO_BOX)
    if boxes.count >= MAX_BOXES:
        return Grade.of(Reason.TOO_MANY_BOXES)
    if boxes.last is None:
        return Grade.of(Reason.UNCLOSED_BOX)
    if not boxes.last.strip():
        return Grade.of(Reason.EMPTY_BOX)
    return boxes.last


def grade(response: str, gold: str, finished: bool = True) -> Grade:
    """Score one response against a gold answer (LaTeX, plain, or a full solution with a box)."""
    answer = check_format(response, finished)
    if isinstance(answer, Grade):
        return answer
    return Grade.of(Reason.CORRECT if is_equivalent(answer, gold) else Reason.WRONG, answer)
