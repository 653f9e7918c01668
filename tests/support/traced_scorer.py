"""`python -m tests.support.traced_scorer serve scorer ...`: `limr serve scorer` with a traced store (tests only).

The crash test needs to know where each SIGKILL landed, and to make sure some land in the middle of a
checkpoint and in the middle of a publish, without any hook in the scorer itself. This wrapper runs the real
CLI command with the store the scorer opens wrapped in `TracedStore`:

- every write-side call (put, put_if_absent as `put`, delete) appends `B op key` before and `E op key` after
  to the file named by `LIMR_TEST_TRACE` (one unbuffered write each, so the lines survive a SIGKILL), and the
  trace tells the test what the scorer was doing when it died (`phase_at_kill`);
- with `LIMR_TEST_PAUSE=POINT` (a name in PAUSE_POINTS), the first call matching that point appends
  `P POINT key` and blocks the ingestion thread for good, so the test can SIGKILL it exactly there.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from limr.store import ObjectStore

# point -> (op, predicate on the key, pause before the call (True) or after it returned (False))
PAUSE_POINTS: dict[str, tuple[str, Callable[[str], bool], bool]] = {
    "checkpoint-before-put": ("put", lambda k: "/checkpoints/" in k, True),
    "checkpoint-after-put": ("put", lambda k: "/checkpoints/" in k, False),
    "publish-claim": ("put", lambda k: k.startswith("datasets/") and k.endswith("/_claim"), True),
    "publish-jsonl": ("put", lambda k: k.startswith("datasets/") and k.endswith("/data.jsonl"), True),
    "publish-parquet": ("put", lambda k: k.startswith("datasets/") and k.endswith("/data.parquet"), True),
    "publish-manifest": ("put", lambda k: k.startswith("datasets/") and k.endswith("/manifest.json"), True),
    "publish-release-claim": ("delete", lambda k: k.startswith("datasets/") and k.endswith("/_claim"), True),
}


def point_phase(point: str) -> str:
    return point.split("-", 1)[0]


class TracedStore:
    """Delegates to `store`; traces writes to the fd `trace_fd` and stops at `pause` (see module docstring)."""

    def __init__(self, store: ObjectStore, trace_fd: int, pause: str | None) -> None:
        self._store, self._fd, self._pause = store, trace_fd, pause
        self._paused = False

    def _line(self, text: str) -> None:
        os.write(self._fd, (text + "\n").encode())

    def _maybe_pause(self, op: str, key: str, before: bool) -> None:
        if self._pause is None or self._paused:
            return
        want_op, matches, want_before = PAUSE_POINTS[self._pause]
        if op == want_op and before == want_before and matches(key):
            self._paused = True
            self._line(f"P {self._pause} {key}")
            threading.Event().wait()  # until the test's SIGKILL

    def _traced(self, op: str, key: str, call: Callable[[], Any]) -> Any:
        self._maybe_pause(op, key, before=True)
        self._line(f"B {op} {key}")
        out = call()
        self._line(f"E {op} {key}")
        self._maybe_pause(op, key, before=False)
        return out

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._traced("put", key, lambda: self._store.put(key, data, content_type))

    def put_if_absent(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        return bool(self._traced("put", key, lambda: self._store.put_if_absent(key, data, content_type)))

    def delete(self, key: str) -> None:
        self._traced("delete", key, lambda: self._store.delete(key))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def phase_at_kill(trace: str) -> str:
    """Where a life's trace says it died: `checkpoint` (its checkpoint PUT in flight or just returned),
    `publish` (between claiming a dataset version and releasing the claim), or `ingestion` (anything else:
    listing, reading and counting objects, status and scores writes)."""
    lines = [ln.split(" ", 2) for ln in trace.splitlines() if ln.count(" ") >= 2]
    if not lines:
        return "ingestion"
    if lines[-1][0] == "P":
        return point_phase(lines[-1][1])
    for mark, op, key in reversed(lines):
        if key.startswith("datasets/") and key.endswith("/_claim"):
            # Inside a publish from the claim PUT's start until the claim's delete has returned.
            if not (mark == "E" and op == "delete"):
                return "publish"
            break
    mark, op, key = lines[-1]
    return "checkpoint" if op == "put" and "/checkpoints/" in key else "ingestion"


def main() -> None:
    import services.scorer.main as scorer_main
    from limr.cli.main import main as limr_main

    fd = os.open(os.environ["LIMR_TEST_TRACE"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    pause = os.environ.get("LIMR_TEST_PAUSE") or None
    if pause is not None and pause not in PAUSE_POINTS:
        raise SystemExit(f"LIMR_TEST_PAUSE={pause!r}: expected one of {sorted(PAUSE_POINTS)}")
    open_store = scorer_main.open_store
    scorer_main.open_store = lambda uri: TracedStore(open_store(uri), fd, pause)  # type: ignore[assignment]
    limr_main()


if __name__ == "__main__":
    main()
