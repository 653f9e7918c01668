"""The scorer checkpoint: exact round trip, corruption detected, never half-read."""

from __future__ import annotations

import pytest

from limr.curation.state import (
    CheckpointError,
    QuarantineRecord,
    RunState,
    decode_checkpoint,
    encode_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from limr.events.io import events_table
from limr.scoring import EpochCounts
from limr.store import LocalStore


def _state() -> RunState:
    counts = EpochCounts()
    counts.add_table(events_table("r", 0, [0, 0, 1], ["a", "b", "a"], [0, 0, 0], [1.0, 0.0, 1.0],
                                  [True, False, True], [3, 3, 3]))  # fmt: skip
    state = RunState("r", counts=counts, cursor="runs/r/events/0000000001-0000.parquet", events=3)
    state.ingested = {"runs/r/events/0000000000-0000.parquet", "runs/r/events/0000000001-0000.parquet"}
    state.quarantined["runs/r/events/x.txt"] = QuarantineRecord("runs/r/events/x.txt", "foreign", 1.5)
    state.scored_epochs, state.scored_events = 1, 2
    return state


def test_round_trip_is_exact(tmp_path):
    store = LocalStore(tmp_path)
    state = _state()
    save_checkpoint(store, "scorer", state)
    back = load_checkpoint(store, "scorer", "r")
    assert back is not None
    assert back.counts == state.counts and back.counts.to_bytes() == state.counts.to_bytes()
    assert (back.cursor, back.ingested, back.events) == (state.cursor, state.ingested, 3)
    assert back.quarantined["runs/r/events/x.txt"].error == "foreign"
    assert (back.scored_epochs, back.scored_events, back.objects) == (1, 2, 2)
    assert load_checkpoint(store, "scorer", "other") is None


@pytest.mark.parametrize("damage", ["truncate", "flip", "magic"])
def test_corruption_is_detected(damage):
    data = bytearray(encode_checkpoint(_state()))
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data[:4] = b"JUNK"
    with pytest.raises(CheckpointError):
        decode_checkpoint(bytes(data))


def test_checkpoint_of_another_run_is_refused(tmp_path):
    store = LocalStore(tmp_path)
    store.put("scorer/checkpoints/r2.ckpt", encode_checkpoint(_state()))
    with pytest.raises(CheckpointError, match="holds run 'r'"):
        load_checkpoint(store, "scorer", "r2")
