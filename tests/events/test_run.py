"""Run lifecycle: the `_FINISHED` marker round trip, and an unreadable marker named, never ignored."""

from __future__ import annotations

import pytest

from limr.events.run import mark_run_finished, run_finished
from limr.events.schema import finished_key
from limr.store import LocalStore


def test_marker_round_trip(tmp_path) -> None:
    store = LocalStore(tmp_path)
    assert run_finished(store, "r") is None
    mark_run_finished(store, "r", 6, steps=24, source="learner")
    info = run_finished(store, "r")
    assert info is not None and info.epochs == 6 and info.run_id == "r"
    assert info.model_extra == {"steps": 24, "source": "learner"}


@pytest.mark.parametrize("body", [b"{", b"[1]", b'{"epochs": -1}', b'{"epochs": "six"}'])
def test_unreadable_marker_names_the_object(tmp_path, body: bytes) -> None:
    store = LocalStore(tmp_path)
    store.put(finished_key("r"), body)
    with pytest.raises(ValueError, match=r"runs/r/_FINISHED: unreadable run-finished marker"):
        run_finished(store, "r")
