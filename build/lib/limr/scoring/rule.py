"""Re-decide `correct` from an events table with a correctness rule (`limr score --correct`, the scorer's
`correct` setting): on the `reward` column, or on an entry of the optional `scores` map."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from limr.events.correct import REWARD, CorrectRule
from limr.scoring.counts import EventDataError

#: The rule that keeps the `correct` column as the writer decided it.
AS_RECORDED = "correct"


def rule_columns(rule: CorrectRule | None) -> tuple[str, ...]:
    """The events columns a rule reads."""
    if rule is None or rule.field == AS_RECORDED:
        return ()
    return (REWARD,) if rule.field == REWARD else ("scores",)


def apply_rule(table: pa.Table, rule: CorrectRule | None, where: str) -> pa.Table:
    """`table` with its `correct` column replaced by the rule's verdict (unchanged for None / `correct`)."""
    if rule is None or rule.field == AS_RECORDED:
        return table
    if rule.field == REWARD:
        values = table.column(REWARD).to_numpy(zero_copy_only=False).astype(np.float64)
    else:
        if "scores" not in table.column_names:
            raise EventDataError(
                f"{where}: the correctness rule {str(rule)!r} names {rule.field!r}, but the events have no"
                " 'scores' column (only 'reward' and 'correct' can be used)"
            )
        looked = pc.map_lookup(table.column("scores"), pa.scalar(rule.field), "first")
        values = looked.to_numpy(zero_copy_only=False).astype(np.float64)  # NaN where absent: never correct
    ok = pa.array(rule.apply(values), pa.bool_())
    return table.set_column(table.column_names.index("correct"), "correct", ok)
