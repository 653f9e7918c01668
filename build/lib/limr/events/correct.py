"""What counts as a correct sample: one small, typed rule used everywhere LIM reads rewards.

LIM needs a yes/no per sample. The released `lim_selection.py` counts `reward == 1`; other trainers log an
`acc` field (verl's `reward_extra_info`), several reward columns (TRL, one per reward function) or shaped
rewards where a threshold is right. A rule is `FIELD`, or `FIELD OP NUMBER` with OP one of
`== != >= > <= <`:

    reward == 1      the default (the released script)
    acc              truthy: non-zero / true
    score >= 0.5     a threshold
    accuracy_reward == 1   a named column (TRL reward function)

`reward` is the trainer's own reward (verl `score`, TRL the weighted sum of its reward columns, ...);
any other name is a field of the dump, or of the events' `scores` map. The parser is a regular expression,
never `eval`, so a rule from a config file or an HTTP body cannot run code.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

_RULE_RE = re.compile(
    r"^\s*(?P<field>[A-Za-z_][A-Za-z0-9_.:/-]*)\s*"
    r"(?:(?P<op>==|!=|>=|<=|>|<)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|true|false))?\s*$"
)
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
#: The name of the trainer's own reward, whatever the dump calls it.
REWARD = "reward"


class CorrectRuleError(ValueError):
    """A rule that does not parse, or a field a rule needs that a sample lacks (the message names it)."""


@dataclass(frozen=True)
class CorrectRule:
    """`field` alone (truthy), or `field op value`."""

    field: str
    op: str | None = None
    value: float | None = None

    def __str__(self) -> str:
        if self.op is None:
            return self.field
        value = self.value if self.value is not None else 0.0
        shown = str(int(value)) if float(value).is_integer() else repr(value)
        return f"{self.field} {self.op} {shown}"

    def test(self, value: Any, where: str = "sample") -> bool:
        """The rule on one value (a number or a bool); errors name `where`."""
        if isinstance(value, bool):
            value = float(value)
        if value is None or not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
            raise CorrectRuleError(f"{where}: field {self.field!r} is {value!r}, expected a number for {self}")
        if self.op is None:
            return bool(value != 0)
        return bool(_OPS[self.op](float(value), self.value))

    def of(self, row: Mapping[str, Any], where: str = "sample") -> bool:
        """The rule on one dump row (a dict of fields)."""
        if self.field not in row:
            raise CorrectRuleError(f"{where}: no field {self.field!r} for the correctness rule {str(self)!r}")
        return self.test(row[self.field], where)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """The rule on a column of numbers or bools -> (n,) bool. NaN is never correct."""
        arr = np.asarray(values)
        if arr.dtype == bool:
            arr = arr.astype(np.float64)
        if self.op is None:
            return np.asarray((arr != 0) & ~np.isnan(arr), dtype=bool)
        return np.asarray(_OPS[self.op](arr, self.value), dtype=bool)

    def to_json(self) -> str:
        return str(self)


def parse_correct(expr: str | CorrectRule | None) -> CorrectRule:
    """Parse `FIELD` or `FIELD OP NUMBER` (None: the default, `reward == 1`)."""
    if expr is None:
        return DEFAULT_CORRECT
    if isinstance(expr, CorrectRule):
        return expr
    m = _RULE_RE.match(expr)
    if not m:
        raise CorrectRuleError(
            f"correctness rule {expr!r}: expected FIELD or FIELD OP NUMBER with OP one of == != >= > <= <"
            " (e.g. 'reward == 1', 'acc', 'score >= 0.5')"
        )
    op, raw = m["op"], m["value"]
    if op is None:
        return CorrectRule(m["field"])
    value = 1.0 if raw == "true" else 0.0 if raw == "false" else float(raw)
    if not math.isfinite(value):
        raise CorrectRuleError(f"correctness rule {expr!r}: the number must be finite")
    return CorrectRule(m["field"], op, value)


DEFAULT_CORRECT = CorrectRule(REWARD, "==", 1.0)
