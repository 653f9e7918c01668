"""Optional wake-ups from MinIO bucket notifications (`ListenBucketNotification`, a MinIO extension).

Notifications are only a latency hint: when an object is created under `runs/`, the ingestion loop wakes
before its poll interval ends. Correctness never depends on them (listing with the persisted cursor is the
source of truth), so a server without the API (AWS S3, SeaweedFS) simply falls back to polling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from limr.store import ObjectStore

log = logging.getLogger("limr.scorer")


def start_notifications(store: ObjectStore, wake: threading.Event, stop: threading.Event) -> threading.Thread | None:
    """Start a daemon thread that sets `wake` on every ObjectCreated event; None when not an S3 store."""
    listen = _listener(store)
    if listen is None:
        return None

    def loop() -> None:
        try:
            with listen() as events:
                for event in events:
                    if stop.is_set():
                        return
                    if event:
                        wake.set()
        except Exception as e:  # noqa: BLE001 - any failure means "not supported here": poll instead
            log.info("bucket notifications unavailable (%s: %s); listing only", type(e).__name__, e)

    thread = threading.Thread(target=loop, name="limr-scorer-notify", daemon=True)
    thread.start()
    return thread


def _listener(store: ObjectStore) -> Callable | None:
    client = getattr(store, "_client", None)
    bucket = getattr(store, "bucket", None)
    if client is None or bucket is None or not hasattr(client, "listen_bucket_notification"):
        return None
    prefix = getattr(store, "prefix", "") + "runs/"
    return lambda: client.listen_bucket_notification(bucket, prefix=prefix, events=("s3:ObjectCreated:*",))
