"""The scorer's HTTP face (health, readiness, metrics, status) and its notification wake-ups."""

from __future__ import annotations

import contextlib
import threading
import time

from fastapi.testclient import TestClient

from limr.store import LocalStore, StoreError
from services.scorer.config import ScorerSettings
from services.scorer.main import create_app
from services.scorer.notify import start_notifications


def _wait(fn, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.05)
    return False


def test_health_ready_metrics_status(s3_uri, run_writer):
    from limr.store import open_store

    store = open_store(s3_uri)
    run_writer(store, "app", prompts=8, epochs=2, steps_per_epoch=2).write_all()
    store.put("runs/app/events/zz-notes.txt", b"foreign")
    settings = ScorerSettings(store=s3_uri, poll_interval_s=0.05, notifications="off")
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert _wait(lambda: client.get("/readyz").status_code == 200)
        assert _wait(lambda: client.get("/v1/status").json()["runs"][0]["scored_epochs"] == 2)
        run = client.get("/v1/status").json()["runs"][0]
        assert (run["run_id"], run["events"], run["objects"], run["quarantined"]) == ("app", 64, 4, 1)
        assert client.get("/v1/runs/app/quarantine").json()[0]["key"] == "runs/app/events/zz-notes.txt"
        assert client.get("/v1/runs/nope/quarantine").status_code == 404
        text = client.get("/metrics").text
        for line in (
            'limr_scorer_events_ingested_total{run="app"} 64.0',
            'limr_scorer_objects_ingested_total{run="app"} 4.0',
            'limr_scorer_objects_quarantined_total{run="app"} 1.0',
            'limr_scorer_ingestion_lag_seconds{run="app"} 0.0',
            'limr_scorer_run_prompts{run="app"} 8.0',
            'limr_scorer_run_epochs{run="app"} 2.0',
            'limr_scorer_datasets_published_total{dataset="app-lim-0.6"} 1.0',
            "limr_scorer_scoring_seconds_count 1.0",
        ):
            assert line in text, line


class _DownStore(LocalStore):
    """A store whose server is down (what S3Store raises after its retries)."""

    def list(self, prefix="", start_after=None):
        raise StoreError("list s3://b: ConnectionError: connection refused (gave up after 5 attempts)")


def test_readyz_reports_an_unreachable_store(monkeypatch, tmp_path):
    monkeypatch.setattr("services.scorer.main.open_store", lambda uri: _DownStore(tmp_path))
    settings = ScorerSettings(store=str(tmp_path), poll_interval_s=0.05, notifications="off")
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert _wait(lambda: client.get("/readyz").json().get("error"))
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "connection refused" in ready.json()["error"]
        assert "limr_scorer_loop_errors_total" in client.get("/metrics").text


class _FakeClient:
    """Stands in for minio's client: `listen_bucket_notification` yields events or fails."""

    def __init__(self, events=None, error=None):
        self.events, self.error, self.calls = events or [], error, []

    def listen_bucket_notification(self, bucket, prefix="", events=()):
        self.calls.append((bucket, prefix, events))
        if self.error:
            raise self.error

        @contextlib.contextmanager
        def stream():
            yield iter(self.events)

        return stream()


class _FakeS3(LocalStore):
    def __init__(self, root, client):
        super().__init__(root)
        self._client, self.bucket, self.prefix = client, "b", "p/"


def test_notifications_wake_the_loop_or_fall_back(tmp_path):
    wake, stop = threading.Event(), threading.Event()
    client = _FakeClient(events=[{"Records": [{"s3": {"object": {"key": "p/runs/r/events/x"}}}]}])
    thread = start_notifications(_FakeS3(tmp_path, client), wake, stop)
    thread.join(5)
    assert wake.is_set() and client.calls == [("b", "p/runs/", ("s3:ObjectCreated:*",))]
    # A server without the API (SeaweedFS, AWS): the thread ends quietly, listing carries on.
    wake.clear()
    failing = _FakeClient(error=RuntimeError("NotImplemented"))
    thread = start_notifications(_FakeS3(tmp_path, failing), wake, stop)
    thread.join(5)
    assert not thread.is_alive() and not wake.is_set()
    assert start_notifications(LocalStore(tmp_path), wake, stop) is None  # local disk: nothing to listen to


def test_seaweedfs_has_no_bucket_notifications_and_listing_takes_over(s3_uri):
    from limr.store import open_store

    wake, stop = threading.Event(), threading.Event()
    thread = start_notifications(open_store(s3_uri), wake, stop)
    assert thread is not None
    thread.join(10)  # the server answers NotImplemented: the listener ends, the poll loop is unaffected
    assert not thread.is_alive() and not wake.is_set()
