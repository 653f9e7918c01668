"""The scorer across resumes of the run it follows: a resume record makes it recount the run under the record,
so a resumed run is counted exactly once, and a run that was finished and then resumed gets a new final version."""

from __future__ import annotations

import pytest

from limr.curation.policy import PublishPolicy
from limr.curation.publish import final_version, list_versions, read_manifest
from limr.events.attempts import AttemptsError, read_attempts, record_resume
from limr.events.io import list_event_keys, read_events_object
from limr.events.run import mark_run_finished
from limr.scoring import EpochCounts, count_run
from limr.store import LocalStore
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor
from tests.services.conftest import RunWriter


def _counts(store, keys) -> EpochCounts:
    counts = EpochCounts()
    for key in keys:
        counts.add_table(read_events_object(store, key), key)
    return counts


def test_a_resume_on_fewer_ranks_is_counted_once_and_withdraws_the_final_version(tmp_path):
    store = LocalStore(tmp_path / "s")
    w = RunWriter(store, "r", prompts=8, epochs=2, steps_per_epoch=2, seed=4)
    w.start()
    for epoch, step in w.steps():  # the first attempt, on two ranks (parts 0 and 1), stopped after 2 epochs
        w.write_step(epoch, step, 0)
        w.write_step(epoch, step, 1)
    mark_run_finished(store, "r", 2)  # e.g. --max-steps: marked finished
    ing = Ingestor(store, ScorerSettings(store=store.uri, policies=(PublishPolicy(name="d", top_k=3),)))
    ing.poll_once()
    first_final = final_version(store, "d")
    assert first_final is not None and ing.states["r"].objects == 8

    # resumed at step 2 on one rank (the checkpoint before the crash): steps 2-3 redone, part 1 never rewritten
    store.delete("runs/r/_FINISHED")
    assert record_resume(store, "r", from_step=2, workers=1) == 1
    w.attempt, w.rng = 1, __import__("numpy").random.default_rng(9)  # different rollouts this time
    new = [w.write_step(1, 2), w.write_step(1, 3)]
    ing.poll_once()  # a running run again: recounted under the record, no final version yet
    old = [k for k in w.keys[:8] if int(k.rsplit("/", 1)[1][:10]) < 2]
    assert ing.states["r"].ingested == set(old + new) and ing.states["r"].finished_epochs is None
    assert ing.states["r"].counts == _counts(store, old + new)
    assert list(list_event_keys(store, "r")) == sorted(old + new)

    mark_run_finished(store, "r", 2)
    ing.poll_once()
    last = final_version(store, "d")
    assert last is not None and last > first_final  # the resumed run's final version is the newest final
    assert count_run(store, "r").counts == ing.states["r"].counts  # equals what `limr select --run` counts
    assert read_manifest(store, "d", last)["final"] and list_versions(store, "d")[-1] == last


def test_events_of_a_resume_not_yet_read_wait_for_the_record(tmp_path):
    store = LocalStore(tmp_path / "s")
    w = RunWriter(store, "r", prompts=4, epochs=1, steps_per_epoch=2)
    w.write_all()
    ing = Ingestor(store, ScorerSettings(store=store.uri, policies=()))
    ing.poll_once()
    w.attempt = 1
    w.write_step(0, 1)  # an attempt-1 object appears before the scorer reads the record (written just before it)
    record_resume(store, "r", 1, 1)
    ing.states["r"].attempt = 0
    import services.scorer.ingest as ingest

    real = ingest.read_attempts
    ingest.read_attempts = lambda store, run_id: real(store, run_id).__class__()  # the stale read
    try:
        assert ing.poll_run("r") == 0 and ing.states["r"].objects == 2  # nothing counted under the stale record
    finally:
        ingest.read_attempts = real
    ing.poll_once()
    assert ing.states["r"].objects == 2 and ing.states["r"].attempt == 1  # step 0 + the redone step 1


def test_attempts_record_is_validated(tmp_path):
    store = LocalStore(tmp_path / "s")
    assert read_attempts(store, "r").latest == 0
    assert record_resume(store, "r", 3, 2) == 1 and record_resume(store, "r", 1, 1) == 2
    att = read_attempts(store, "r")
    assert att.superseded(5, 0) and att.superseded(2, 1) and att.superseded(2, 0)  # attempt 2 redid steps 1, ...
    assert not att.superseded(0, 0) and not att.superseded(0, 1) and not att.superseded(4, 2)
    store.put("runs/r/attempts.json", b'{"resumes": [{"attempt": 2, "from_step": 0}]}')
    with pytest.raises(AttemptsError, match="attempts must be 1, 2"):
        read_attempts(store, "r")
