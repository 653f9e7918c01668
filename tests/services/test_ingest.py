"""Scorer ingestion against the real S3 server: exactly-once across restarts, quarantine, late objects."""

from __future__ import annotations

import io
import json
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq

from limr.curation.state import load_checkpoint
from limr.events.io import read_events_object
from limr.scoring import EpochCounts
from limr.store import StoreError, open_store
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor


def _settings(uri: str, **kw) -> ScorerSettings:
    base = {
        "store": uri,
        "policies": (),
        "checkpoint_every": 2,
        "checkpoint_min_interval_s": 0,
        "rescan_interval_s": 3600,
    }
    base["notifications"] = "off"
    return ScorerSettings(**(base | kw))


def _expected(store, keys) -> EpochCounts:
    counts = EpochCounts()
    for key in keys:
        counts.add_table(read_events_object(store, key), key)
    return counts


def test_exactly_once_across_restarts(s3_uri, run_writer):
    store = open_store(s3_uri)
    w = run_writer(store, "r1", prompts=12, epochs=3, steps_per_epoch=4)
    w.write_all()
    # First life: stop right after the second checkpoint, mid-run (in-memory work after it is lost).
    first = Ingestor(store, _settings(s3_uri))
    commits = []

    def stop_after_two(run_id, keys):
        commits.append(keys)
        if len(commits) == 2:
            first.stop_event.set()

    first.on_commit = stop_after_two
    first.poll_once()
    saved = load_checkpoint(store, "scorer", "r1")
    assert saved is not None and saved.objects == 4 < len(w.keys)
    # Second life resumes from the checkpoint; a third one finds nothing new.
    second = Ingestor(store, _settings(s3_uri))
    assert second.poll_once() == len(w.keys) - 4
    third = Ingestor(store, _settings(s3_uri))
    assert third.poll_once() == 0
    final = load_checkpoint(store, "scorer", "r1")
    expected = _expected(store, w.keys)
    assert final.counts == expected and final.counts.to_bytes() == expected.to_bytes()
    assert final.events == 12 * 3 * 4 and final.objects == len(w.keys) and not final.quarantined
    status = json.loads(store.get("scorer/status/r1.json"))
    assert status["events"] == 144 and status["epochs_seen"] == 3 and status["prompts"] == 12


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_malformed_objects_are_quarantined_and_the_rest_ingested(s3_uri, run_writer):
    store = open_store(s3_uri)
    w = run_writer(store, "bad", prompts=8, epochs=2, steps_per_epoch=2)
    w.write_all()
    good = list(w.keys)
    valid = store.get(good[0])
    bad = {
        "runs/bad/events/0000000100-0000.parquet": valid[: len(valid) // 2],  # truncated Parquet
        "runs/bad/events/0000000101-0000.parquet": _parquet(pa.table({"prompt_id": ["a"], "x": [1]})),  # schema
        "runs/bad/events/0000000102-0000.parquet": b"not parquet at all",
        "runs/bad/events/README.txt": b"a foreign file",
    }
    for key, data in bad.items():
        store.put(key, data)
    # An events object whose rows claim another run.
    other = run_writer(store, "other", prompts=2, epochs=1, steps_per_epoch=1)
    other.write_step(0, 0)
    store.put("runs/bad/events/0000000103-0000.parquet", store.get(other.keys[0]))

    ing = Ingestor(store, _settings(s3_uri, runs="bad"))
    ing.poll_once()
    state = load_checkpoint(store, "scorer", "bad")
    assert state.counts == _expected(store, good)
    assert set(state.quarantined) == set(bad) | {"runs/bad/events/0000000103-0000.parquet"}
    errors = {k: r.error for k, r in state.quarantined.items()}
    assert "foreign object" in errors["runs/bad/events/README.txt"]
    assert "missing required column" in errors["runs/bad/events/0000000101-0000.parquet"]
    assert "run(s) ['other']" in errors["runs/bad/events/0000000103-0000.parquet"]
    record = json.loads(store.get("scorer/quarantine/bad/0000000100-0000.parquet.json"))
    assert record["key"].endswith("0000000100-0000.parquet") and "Parquet" in record["error"]
    assert ing.metrics.registry.get_sample_value("limr_scorer_objects_quarantined_total", {"run": "bad"}) == 5
    # Quarantined objects are not retried; new good objects after them still flow.
    key = w.write_step(1, 200)
    assert Ingestor(store, _settings(s3_uri, runs="bad")).poll_once() == 1
    assert key in load_checkpoint(store, "scorer", "bad").ingested


def test_late_object_below_the_cursor_is_caught_by_the_rescan(s3_uri, run_writer):
    store = open_store(s3_uri)
    w = run_writer(store, "late", prompts=6, epochs=1, steps_per_epoch=3)
    w.start()
    w.write_step(0, 0)
    w.write_step(0, 2)
    ing = Ingestor(store, _settings(s3_uri, rescan_interval_s=0.01))
    ing.poll_once()
    late = w.write_step(0, 1)  # a parallel writer finished late: its key sorts below the cursor
    assert late < ing.states["late"].cursor
    assert ing.poll_once() == 1
    assert ing.poll_once() == 0
    assert load_checkpoint(store, "scorer", "late").counts == _expected(store, w.keys)


class _FlakyStore:
    """Delegates to a real store, but the first read of one key fails like a network error."""

    def __init__(self, store, key):
        self._store, self._key, self.failed = store, key, False

    def get(self, key):
        if key == self._key and not self.failed:
            self.failed = True
            raise StoreError("get: ConnectionError: connection reset (simulated)")
        return self._store.get(key)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_transient_errors_are_retried_not_quarantined(s3_uri, run_writer):
    store = open_store(s3_uri)
    w = run_writer(store, "flaky", prompts=6, epochs=1, steps_per_epoch=3)
    w.write_all()
    flaky = _FlakyStore(store, w.keys[1])
    ing = Ingestor(flaky, _settings(s3_uri, poll_interval_s=0.01))
    ing.poll_once()  # the run's pass fails: it is set aside (the scorer goes on) and retried after its backoff
    assert "connection reset" in ing.failing.runs["flaky"].error and ing.last_error is None
    time.sleep(0.05)
    ing.poll_once()
    assert not ing.failing.runs
    state = load_checkpoint(store, "scorer", "flaky")
    assert flaky.failed and not state.quarantined
    assert state.counts == _expected(store, w.keys)


def test_a_bug_fails_the_pass_is_counted_and_retried_never_quarantined(tmp_path, run_writer, monkeypatch):
    """An exception that is not the object's fault (here: a bug injected into counting, after the counts were
    changed) must not quarantine anything: the pass fails, the loop-error metric counts it, and the retry
    counts every object exactly once."""
    from limr.store import LocalStore

    store = LocalStore(tmp_path / "store")
    w = run_writer(store, "bug", prompts=9, epochs=2, steps_per_epoch=3)
    w.write_all()
    original, calls = EpochCounts.add_summary, []

    def buggy(self, summary):
        n = original(self, summary)
        calls.append(n)
        if len(calls) == 3:
            raise ZeroDivisionError("injected bug in counting")
        return n

    monkeypatch.setattr(EpochCounts, "add_summary", buggy)
    ing = Ingestor(store, _settings(store.uri, checkpoint_every=1, checkpoint_min_interval_s=0, poll_interval_s=0.01))
    thread = threading.Thread(target=ing.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = load_checkpoint(store, "scorer", "bug")
        if ing.ready.is_set() and state is not None and state.objects == len(w.keys):
            break
        time.sleep(0.05)
    ing.stop_event.set()
    ing.wake.set()
    thread.join(10)
    assert ing.metrics.registry.get_sample_value("limr_scorer_loop_errors_total") == 1
    state = load_checkpoint(store, "scorer", "bug")
    assert not state.quarantined and not store.list_keys("scorer/quarantine/")
    assert state.objects == len(w.keys) and state.counts == _expected(store, w.keys)
