"""Crash test: SIGKILL `limr serve scorer` many times while a writer emits events, at random moments and, on
purpose, in the middle of checkpoints and of publishes.

The final counts, scores and published dataset must equal those of an uninterrupted scorer over the same
objects, bit for bit. The uninterrupted reference runs in-process on the same bucket with its own state
prefix, so both read exactly the same immutable event objects.

Each scorer life runs under tests/support/traced_scorer.py (the real CLI with a traced store; nothing in the
scorer itself): its trace says where the kill landed, and an aimed life stops at a chosen point (before or
after the checkpoint PUT; before the claim, data.jsonl, data.parquet or manifest PUT of a dataset version,
or before the claim's release) until it is killed there.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import random
import threading
import time

import pyarrow.parquet as pq
import pytest

from limr.curation.policy import PublishPolicy
from limr.curation.publish import list_datasets, read_manifest
from limr.curation.snapshot import read_scores_snapshot
from limr.curation.state import load_checkpoint
from limr.scoring import score_counts
from limr.store import ObjectNotFound, open_store
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor
from tests.services.conftest import Service, service_env
from tests.support.traced_scorer import phase_at_kill

pytestmark = pytest.mark.slow
# 15 in CI; `LIMR_CRASH_KILLS=50` for the figure in docs/services.md (the run grows with the count).
MIN_KILLS = int(os.environ.get("LIMR_CRASH_KILLS", "15"))
SCALE = -(-MIN_KILLS // 15)  # run size and time limit per 15 kills
AIMED = max(2, MIN_KILLS // 5)  # kills aimed mid-publish, and as many mid-checkpoint: 3 in CI, 10 of 50
# The publish points before the manifest: a restarted scorer redoes that publish at once (taking its claim
# over), so consecutive aimed lives all land in it; the last one stops after the manifest (the claim's
# release), where the version is complete and the next life finds it published.
PUBLISH_POINTS = ("publish-claim", "publish-jsonl", "publish-parquet", "publish-manifest")
CHECKPOINT_POINTS = ("checkpoint-before-put", "checkpoint-after-put")


def _progress(store) -> int:
    try:
        return json.loads(store.get("scorer/status/crash.json"))["objects"]
    except ObjectNotFound:
        return 0


def _aim(life: int, aimed: collections.Counter) -> str | None:
    """Where life `life` stops to be killed (None: a random moment). The publish block comes first: the
    backlog's first full pass publishes, so the first aimed life does not wait for an epoch to complete."""
    if aimed["publish"] < AIMED:
        n = aimed["publish"]
        return PUBLISH_POINTS[n % len(PUBLISH_POINTS)] if n < AIMED - 1 else "publish-release-claim"
    if aimed["checkpoint"] < AIMED and life % 2 == 0:
        return CHECKPOINT_POINTS[aimed["checkpoint"] % len(CHECKPOINT_POINTS)]
    return None


def test_sigkill_at_random_moments_changes_nothing(s3_uri, run_writer, tmp_path):
    store = open_store(s3_uri)
    rng = random.Random(1234)
    prompts = 200 * SCALE
    w = run_writer(store, "crash", prompts=prompts, epochs=6, samples=4, steps_per_epoch=100 * SCALE, seed=11)
    total = w.epochs * w.steps_per_epoch
    backlog = 400 * SCALE
    w.start()
    steps = list(w.steps())
    for epoch, step in steps[:backlog]:  # a backlog to catch up on, then a writer that keeps emitting
        w.write_step(epoch, step)

    # The writer keeps emitting while the scorer runs, paced by the kill loop (each life releases a few
    # steps), so ingestion cannot finish before enough kills have landed however fast the machine is.
    released = threading.Semaphore(0)

    def write_rest() -> None:
        for epoch, step in steps[backlog:]:
            released.acquire(timeout=60)
            w.write_step(epoch, step)
            time.sleep(0.02)

    writer = threading.Thread(target=write_rest, daemon=True)
    args = ["scorer", "--store", s3_uri, "--poll-interval", "0.1", "--checkpoint-every", "3",
            "--checkpoint-min-interval", "0", "--policy", "name=crash-{run},threshold=0.5"]  # fmt: skip
    kills, life = 0, 0
    aimed: collections.Counter = collections.Counter()  # kills at a chosen point, by phase
    landed: collections.Counter = collections.Counter()  # every counted kill, by the phase its trace shows
    writer.start()
    deadline = time.monotonic() + 600 * SCALE
    while (kills < MIN_KILLS or min(aimed["publish"], aimed["checkpoint"]) < AIMED) and time.monotonic() < deadline:
        before = _progress(store)
        if before >= total:
            break
        for _ in range(8):
            released.release()
        point = _aim(life, aimed)
        trace = tmp_path / f"life-{life:03d}.trace"
        env = service_env({"LIMR_TEST_TRACE": str(trace), "LIMR_TEST_PAUSE": point or ""})
        svc = Service(args, env, tmp_path / "scorer.log", module="tests.support.traced_scorer")
        life += 1
        svc.wait_ready("/healthz", timeout_s=120)
        t0 = time.monotonic()
        if point:  # wait until it stops at its point, releasing a step whenever it has caught up
            last_release = t0
            while time.monotonic() - t0 < 300 * SCALE and svc.proc.poll() is None:
                if trace.exists() and "\nP " in "\n" + trace.read_text():
                    break
                if time.monotonic() - last_release > 0.5 and _progress(store) >= len(w.keys):
                    released.release()
                    last_release = time.monotonic()
                time.sleep(0.05)
        else:
            # Wait until this life is up and makes progress (it is ingesting), then kill it at a random
            # moment. A kill counts only when the life ingested something: on a loaded machine start-up
            # alone can take tens of seconds, and a kill before that proves nothing.
            while _progress(store) == before and time.monotonic() - t0 < 30 and svc.proc.poll() is None:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
        alive = svc.proc.poll() is None
        svc.kill()
        svc.stop()
        text = trace.read_text() if trace.exists() else ""
        paused = "\nP " in "\n" + text
        if alive and (paused or before < _progress(store) < total):
            kills += 1
            landed[phase_at_kill(text)] += 1
            if paused:
                aimed[phase_at_kill(text)] += 1
    for _ in range(len(steps)):
        released.release()
    writer.join(60)
    assert kills >= MIN_KILLS, f"only {kills} kills landed during ingestion"
    assert aimed["publish"] >= AIMED and aimed["checkpoint"] >= AIMED, f"aimed kills landed: {dict(aimed)}"
    # A last life finishes the job.
    svc = Service(args, service_env(), tmp_path / "scorer.log")
    try:
        svc.wait_ready("/healthz", timeout_s=120)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = json.loads(store.get("scorer/status/crash.json"))
            if status["objects"] == total and status["scored_epochs"] == 6:
                break
            time.sleep(0.1)
    finally:
        svc.stop()

    ref_settings = ScorerSettings(store=s3_uri, state_prefix="ref", notifications="off",
                                  policies=(PublishPolicy(name="ref-{run}", threshold=0.5),))  # fmt: skip
    Ingestor(store, ref_settings).poll_once()
    crashed, ref = load_checkpoint(store, "scorer", "crash"), load_checkpoint(store, "ref", "crash")
    assert crashed.ingested == ref.ingested == set(w.keys) and not crashed.quarantined
    assert crashed.events == ref.events == prompts * 6 * 4
    assert crashed.counts.to_bytes() == ref.counts.to_bytes()  # exact integer counts: none lost or doubled
    a, b = score_counts(crashed.counts, 6), score_counts(ref.counts, 6)
    assert a.prompt_ids == b.prompt_ids and a.scores.tobytes() == b.scores.tobytes()  # bit for bit
    snap_a, snap_b = read_scores_snapshot(store, "scorer", "crash"), read_scores_snapshot(store, "ref", "crash")
    assert snap_a.column("score").to_pylist() == snap_b.column("score").to_pylist()
    # Every published version is complete and consecutive; the last one equals the reference's.
    versions = list_datasets(store)["crash-crash"]
    assert versions == list(range(1, len(versions) + 1))
    for v in versions:  # no partial version is visible: every file matches its manifest
        for fname, meta in read_manifest(store, "crash-crash", v)["files"].items():
            assert hashlib.sha256(store.get(f"datasets/crash-crash/v{v}/{fname}")).hexdigest() == meta["sha256"]
    last = read_manifest(store, "crash-crash", versions[-1])
    assert last["epochs_used"] == 6
    assert last["content_hash"] == read_manifest(store, "ref-crash", 1)["content_hash"]
    got = pq.read_table(io.BytesIO(store.get(f"datasets/crash-crash/v{versions[-1]}/data.parquet")))
    assert got.equals(pq.read_table(io.BytesIO(store.get("datasets/ref-crash/v1/data.parquet"))))
    print(
        f"crash test: {kills} SIGKILLs during ingestion of {total} objects in {life} lives; where they landed: "
        f"{dict(landed)} ({dict(aimed)} of them aimed); {len(versions)} versions published"
    )
