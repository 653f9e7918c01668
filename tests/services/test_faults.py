"""Faults under the scorer: 503/SlowDown answers and a full disk (ENOSPC) at random store calls.

The real ingestion loop (`Ingestor.run`) runs against a store that fails a share of its calls; the run then
finishes and the scorer must end exactly where a fault-free scorer ends: same counts, same final datasets,
nothing counted twice, and no version visible without all of its files.
"""

from __future__ import annotations

import errno
import hashlib
import json
import random
import threading
import time

import pytest

from limr.curation.policy import PublishPolicy
from limr.curation.publish import final_version, list_datasets, read_manifest
from limr.curation.state import load_checkpoint
from limr.store import LocalStore, StoreError
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor

POLICIES = (PublishPolicy(name="{run}-lim", threshold=0.4), PublishPolicy(name="{run}-top", top_k=7))


class FaultyStore:
    """A store whose calls fail at random: 503 SlowDown on any call, or a full disk on writes."""

    def __init__(self, store: LocalStore, rate: float, seed: int, kind: str) -> None:
        self._store, self._rng, self.rate, self.kind, self.faults = store, random.Random(seed), rate, kind, 0

    def _maybe_fail(self, op: str, key: str) -> None:
        if self.rate and self._rng.random() < self.rate:
            self.faults += 1
            if self.kind == "enospc" and op in ("put", "delete"):
                raise OSError(errno.ENOSPC, "No space left on device (simulated)", key)
            if self.kind == "slowdown":
                raise StoreError(f"{op} {key}: 503 SlowDown: please reduce your request rate (simulated)")

    def put(self, key, data, content_type="application/octet-stream"):
        self._maybe_fail("put", key)
        return self._store.put(key, data, content_type)

    def put_if_absent(self, key, data, content_type="application/octet-stream"):
        self._maybe_fail("put", key)
        return self._store.put_if_absent(key, data, content_type)

    def get(self, key):
        self._maybe_fail("get", key)
        return self._store.get(key)

    def delete(self, key):
        self._maybe_fail("delete", key)
        return self._store.delete(key)

    def list(self, prefix="", start_after=None):
        self._maybe_fail("list", prefix)
        return self._store.list(prefix, start_after)

    def exists(self, key):
        self._maybe_fail("exists", key)
        return self._store.exists(key)

    def __getattr__(self, name):
        return getattr(self._store, name)


def _write_run(store: LocalStore, run_writer) -> list[str]:
    w = run_writer(store, "f", prompts=30, epochs=4, steps_per_epoch=3, seed=3, gaps={3: {4, 5}})
    w.write_all()
    w.finish()
    return w.keys


def _settle(store, settings: ScorerSettings, n_objects: int, timeout_s: float = 60.0) -> Ingestor:
    """Run the real loop until the run is ingested and its final datasets published, then stop it."""
    ing = Ingestor(store, settings)
    thread = threading.Thread(target=ing.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            state = load_checkpoint(store._store if hasattr(store, "_store") else store, "scorer", "f")
            if state is not None and state.objects == n_objects and state.final_objects == n_objects:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"not settled in {timeout_s}s: {ing.last_error}")
    finally:
        ing.stop_event.set()
        ing.wake.set()
        thread.join(30)
    return ing


def _published(store: LocalStore) -> dict[str, list[tuple[str, bytes]]]:
    """Every visible version with its data, after checking each file against the manifest's sha256."""
    out = {}
    for name, versions in list_datasets(store).items():
        out[name] = []
        for v in versions:
            m = read_manifest(store, name, v)
            for fname, info in m["files"].items():
                data = store.get(f"datasets/{name}/v{v}/{fname}")
                assert hashlib.sha256(data).hexdigest() == info["sha256"], (name, v, fname)  # no partial version
            out[name].append((m["content_hash"], store.get(f"datasets/{name}/v{v}/data.jsonl")))
    return out


@pytest.mark.parametrize("kind", ["slowdown", "enospc"])
def test_faulty_store_ends_where_a_clean_one_does(tmp_path, run_writer, kind: str) -> None:
    settings = ScorerSettings(
        store="unused", policies=POLICIES, notifications="off", poll_interval_s=0.01, checkpoint_every=2,
        checkpoint_min_interval_s=0, runs_refresh_s=0.05,
    )  # fmt: skip
    clean = LocalStore(tmp_path / "clean")
    keys = _write_run(clean, run_writer)
    _settle(clean, settings, len(keys))

    raw = LocalStore(tmp_path / "faulty")
    _write_run(raw, run_writer)
    faulty = FaultyStore(raw, rate=0.15, seed=11, kind=kind)
    ing = _settle(faulty, settings, len(keys))
    assert faulty.faults > 10 and ing.metrics.registry.get_sample_value("limr_scorer_loop_errors_total") > 0

    a, b = load_checkpoint(clean, "scorer", "f"), load_checkpoint(raw, "scorer", "f")
    assert b.counts == a.counts and b.events == a.events and not b.quarantined  # nothing lost, nothing twice
    got, want = _published(raw), _published(clean)
    # Retries may publish a running version the clean scorer skipped, never a different final one.
    for name in want:
        assert got[name][-1] == want[name][-1]
        assert final_version(raw, name) == list_datasets(raw)[name][-1]
        assert json.loads(raw.get(f"datasets/{name}/v{final_version(raw, name)}/manifest.json"))["final"] is True
