"""Per-problem held-out results: which held-out problems a run's greedy answers got right at each evaluation.

`runs/{run}/heldout/{done_steps:010d}.json` holds `prompt_ids` (the held-out file's order) and `correct`, one
'0'/'1' per problem. The accuracy in the step's metrics is their mean; the record is what lets `limr experiment`
compare arms *paired* on the same problems (limr.experiment.stats) instead of only through their means.
"""

from __future__ import annotations

import json
from typing import Any

from limr.events.schema import heldout_key
from limr.store import ObjectStore


def write_heldout(store: ObjectStore, run_id: str, done_steps: int, prompt_ids: list[str], correct: list[bool]) -> str:
    if len(prompt_ids) != len(correct):
        raise ValueError(f"{len(prompt_ids)} held-out ids for {len(correct)} results")
    body = {"step": done_steps, "prompt_ids": prompt_ids, "correct": "".join("1" if c else "0" for c in correct)}
    key = heldout_key(run_id, done_steps)
    store.put(key, json.dumps(body).encode(), content_type="application/json")
    return key


def read_heldout(store: ObjectStore, run_id: str, done_steps: int) -> dict[str, Any] | None:
    """The record of one evaluation, or None when the run did not write one (runs from before it existed)."""
    key = heldout_key(run_id, done_steps)
    if not store.exists(key):
        return None
    body = json.loads(store.get(key))
    if len(body["prompt_ids"]) != len(body["correct"]) or set(body["correct"]) - {"0", "1"}:
        raise ValueError(f"{store.uri}/{key}: malformed held-out record")
    return dict(body)
