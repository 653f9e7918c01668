"""The S3 server itself crashes (SIGKILL) and comes back: once while the scorer ingests, once in the middle of
publishing the final dataset. Nothing is lost or counted twice, and no partial version is ever visible."""

from __future__ import annotations

import threading
import time

import pytest

from limr.curation.policy import PublishPolicy
from limr.curation.publish import final_version, list_datasets, read_manifest
from limr.curation.state import load_checkpoint
from limr.store import open_store
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor
from tests.support.s3server import start_s3_server

pytestmark = pytest.mark.slow


class KillServerAt:
    """Delegates to a store; at chosen calls it SIGKILLs the S3 server and restarts it `down_s` later."""

    def __init__(self, store, server, triggers, down_s: float = 10.0) -> None:
        self._store, self.server, self.triggers, self.down_s = store, server, list(triggers), down_s
        self.fired: list[str] = []
        self.restarted = threading.Event()
        self._gets = 0

    def _hook(self, op: str, key: str) -> None:
        self._gets += op == "get" and "/events/" in key
        if self.triggers and self.triggers[0](op, key, self._gets) and not self._down():
            self.triggers.pop(0)
            self.fired.append(f"{op} {key}")
            self.restarted.clear()
            self.server.kill()
            threading.Timer(self.down_s, self._restart).start()

    def _down(self) -> bool:
        return self.server.process.poll() is not None

    def _restart(self) -> None:
        self.server.restart()
        self.restarted.set()

    def get(self, key):
        self._hook("get", key)
        return self._store.get(key)

    def put(self, key, data, content_type="application/octet-stream"):
        self._hook("put", key)
        return self._store.put(key, data, content_type)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_s3_server_killed_during_ingestion_and_during_a_publish(run_writer, monkeypatch):
    server = start_s3_server()
    try:
        for k, v in server.env().items():
            monkeypatch.setenv(k, v)
        uri = f"s3://{server.make_bucket('restart')}/limr"
        store = open_store(uri)
        w = run_writer(store, "s", prompts=30, epochs=4, steps_per_epoch=3, seed=5, gaps={3: {1, 2}})
        w.write_all()
        w.finish()
        triggers = [
            lambda op, key, gets: op == "get" and gets == 5,  # ingesting the 5th events object
            lambda op, key, gets: op == "put" and key.endswith("/data.parquet"),  # publishing the final version
        ]
        flaky = KillServerAt(store, server, triggers)
        policy = PublishPolicy(name="{run}-lim", threshold=0.4)
        settings = ScorerSettings(store=uri, policies=(policy,), notifications="off", poll_interval_s=0.05,
                                  checkpoint_every=2, checkpoint_min_interval_s=0)  # fmt: skip
        ing = Ingestor(flaky, settings)
        loop = threading.Thread(target=ing.run, daemon=True)
        loop.start()
        deadline = time.monotonic() + 180
        state = None
        while time.monotonic() < deadline:
            try:
                state = load_checkpoint(store, "scorer", "s")
            except Exception:  # noqa: BLE001 - the server is down right now
                state = None
            if len(flaky.fired) == 2 and flaky.restarted.is_set() and state and state.final_objects == len(w.keys):
                break
            time.sleep(0.1)
        ing.stop_event.set()
        ing.wake.set()
        loop.join(60)
        assert len(flaky.fired) == 2, flaky.fired
        assert state is not None and state.final_objects == len(w.keys), ing.last_error
        # The S3 store's retries (limr.store.s3: attempts with backoff, each with urllib3's own) ride out a
        # 10 s outage; a longer one fails the pass and is retried (test_faults.py covers that path).

        ref = ScorerSettings(store=uri, state_prefix="ref", notifications="off",
                             policies=(PublishPolicy(name="ref-{run}", threshold=0.4),))  # fmt: skip
        Ingestor(store, ref).poll_once()
        a, b = load_checkpoint(store, "scorer", "s"), load_checkpoint(store, "ref", "s")
        assert a.ingested == b.ingested == set(w.keys) and not a.quarantined
        assert a.counts.to_bytes() == b.counts.to_bytes()  # none lost, none counted twice
        versions = list_datasets(store)["s-lim"]
        assert versions == list(range(1, len(versions) + 1))  # consecutive: a crashed claim was taken over
        final = read_manifest(store, "s-lim", final_version(store, "s-lim"))
        assert final["content_hash"] == read_manifest(store, "ref-s", final_version(store, "ref-s"))["content_hash"]
        assert store.get(f"datasets/s-lim/v{final['version']}/data.parquet") == store.get(
            f"datasets/ref-s/v{final_version(store, 'ref-s')}/data.parquet"
        )
    finally:
        server.stop()
