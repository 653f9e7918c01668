"""The crash test's trace reading (tests/support/traced_scorer.py): where a SIGKILL landed, and the pause."""

from __future__ import annotations

import os
import threading

from limr.store import open_store
from tests.support.traced_scorer import TracedStore, phase_at_kill

CKPT = "scorer/checkpoints/r.ckpt"
CLAIM = "datasets/r-lim/v2/_claim"


def test_phase_at_kill_reads_the_last_writes():
    assert phase_at_kill("") == "ingestion"
    assert phase_at_kill(f"B put {CKPT}\n") == "checkpoint"  # the checkpoint PUT in flight
    assert phase_at_kill(f"B put {CKPT}\nE put {CKPT}\n") == "checkpoint"  # written, not yet acted on
    assert phase_at_kill(f"B put {CKPT}\nE put {CKPT}\nB put scorer/status/r.json\n") == "ingestion"
    publish = f"B put {CLAIM}\nE put {CLAIM}\nB put datasets/r-lim/v2/data.jsonl\n"
    assert phase_at_kill(publish) == "publish"
    assert phase_at_kill(publish + f"E put datasets/r-lim/v2/data.jsonl\nB delete {CLAIM}\n") == "publish"
    done = publish + f"E put datasets/r-lim/v2/data.jsonl\nB delete {CLAIM}\nE delete {CLAIM}\n"
    assert phase_at_kill(done) == "ingestion"
    assert phase_at_kill(done + f"B put {CKPT}\n") == "checkpoint"
    assert phase_at_kill(f"P publish-parquet {CLAIM}\n") == "publish"


def test_traced_store_traces_writes_and_stops_at_its_point(tmp_path):
    trace = tmp_path / "t.trace"
    fd = os.open(trace, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    store = TracedStore(open_store(str(tmp_path / "store")), fd, "checkpoint-after-put")
    store.put("runs/r/run.json", b"{}")
    writer = threading.Thread(target=store.put, args=(CKPT, b"x"), daemon=True)
    writer.start()
    writer.join(0.5)
    assert writer.is_alive()  # stopped at its point, after the PUT returned
    assert store.get(CKPT) == b"x"
    assert trace.read_text().splitlines() == [
        "B put runs/r/run.json",
        "E put runs/r/run.json",
        f"B put {CKPT}",
        f"E put {CKPT}",
        f"P checkpoint-after-put {CKPT}",
    ]
    assert phase_at_kill(trace.read_text()) == "checkpoint"
    os.close(fd)
