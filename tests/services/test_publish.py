"""Dataset versions: idempotent, immutable, deterministic hashes, crash-safe numbering, auto-publish by the scorer."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from limr.curation.policy import PublishPolicy, SelectionPolicy
from limr.curation.publish import list_datasets, publish_version, read_manifest, version_prefix
from limr.curation.selecting import select_prompts
from limr.curation.state import load_checkpoint
from limr.events.io import read_prompts
from limr.scoring import score_counts, score_run
from limr.store import open_store
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor


def _scored(store, run_writer, run_id="pub", **kw):
    w = run_writer(store, run_id, **kw)
    w.write_all()
    Ingestor(store, ScorerSettings(store=store.uri, policies=(), notifications="off")).poll_once()
    state = load_checkpoint(store, "scorer", run_id)
    return w, score_counts(state.counts, state.counts.num_epochs)


def test_publish_is_idempotent_immutable_and_deterministic(s3_uri, s3_server, run_writer):
    store = open_store(s3_uri)
    w, result = _scored(store, run_writer)
    prompts = read_prompts(store, "pub")
    lim = SelectionPolicy(threshold=0.3)
    first = publish_version(store, "ds", "pub", result, lim, prompts)
    assert first.created and first.manifest["version"] == 1 and first.manifest["previous_version"] is None
    again = publish_version(store, "ds", "pub", result, lim, prompts)
    assert not again.created and again.manifest == first.manifest
    v1_files = {k: store.get(k) for k in store.list_keys(version_prefix("ds", 1))}
    top = publish_version(store, "ds", "pub", result, SelectionPolicy(top_k=5), prompts)
    assert top.created and top.manifest["version"] == 2 and top.manifest["previous_version"] == 1
    assert {k: store.get(k) for k in store.list_keys(version_prefix("ds", 1))} == v1_files  # v1 untouched
    assert list_datasets(store) == {"ds": [1, 2]}

    m = read_manifest(store, "ds", 1)
    assert m["run"] == "pub" and m["epochs_used"] == 4 and m["policy"]["threshold"] == 0.3
    expected = [pid for pid, s in zip(result.prompt_ids, result.scores, strict=True) if s >= 0.3]
    assert m["counts"] == {"prompts_scored": 24, "prompts_left_out": 0, "selected": len(expected)}
    assert sum(m["score_histogram"]["counts"]) + m["score_histogram"]["below_zero"] == 24
    lines = [json.loads(x) for x in store.get("datasets/ds/v1/data.jsonl").splitlines()]
    assert [r["prompt_id"] for r in lines] == expected  # pool order
    assert lines[0]["prompt"] == prompts[w.ids.index(expected[0])].prompt
    table = pq.read_table(io.BytesIO(store.get("datasets/ds/v1/data.parquet")))
    assert table.column("prompt_id").to_pylist() == expected

    # Same inputs in another bucket: same hash and bytes (created_at aside).
    other = open_store(f"s3://{s3_server.make_bucket('pub-twin')}/x")
    _, result2 = _scored(other, run_writer)
    twin = publish_version(other, "ds", "pub", result2, lim, read_prompts(other, "pub"))
    assert twin.manifest["content_hash"] == m["content_hash"]
    assert other.get("datasets/ds/v1/data.jsonl") == store.get("datasets/ds/v1/data.jsonl")


def test_crash_mid_publish_reuses_the_version_number(s3_uri, run_writer):
    store = open_store(s3_uri)
    _, result = _scored(store, run_writer)
    prompts = read_prompts(store, "pub")
    # A previous life of the scorer claimed v1 and wrote data, then died before the manifest.
    store.put("datasets/ds/v1/_claim", json.dumps({"owner": "scorer:scorer", "token": "dead"}).encode())
    store.put("datasets/ds/v1/data.jsonl", b"partial")
    assert list_datasets(store) == {}  # invisible without a manifest
    out = publish_version(store, "ds", "pub", result, SelectionPolicy(fraction=0.5), prompts, owner="scorer:scorer")
    assert out.created and out.manifest["version"] == 1
    assert store.get("datasets/ds/v1/data.jsonl") != b"partial" and not store.exists("datasets/ds/v1/_claim")
    # Another publisher's fresh claim on v2 is respected: the next version skips it.
    store.put("datasets/ds/v2/_claim", json.dumps({"owner": "api:other", "token": "t"}).encode())
    out2 = publish_version(store, "ds", "pub", result, SelectionPolicy(top_k=3), prompts, owner="scorer:scorer")
    assert out2.manifest["version"] == 3


def test_policies_validate():
    with pytest.raises(ValidationError, match="exactly one"):
        SelectionPolicy(threshold=0.5, top_k=3)
    with pytest.raises(ValidationError):
        SelectionPolicy(threshold=1.5)
    with pytest.raises(ValidationError, match="exactly one"):
        PublishPolicy(name="x")
    assert PublishPolicy(name="{run}-top", top_k=3).dataset_name("r1") == "r1-top"


def test_scorer_publishes_as_epochs_complete_and_matches_core_selection(s3_uri, run_writer):
    store = open_store(s3_uri)
    policies = (
        PublishPolicy(name="{run}-lim", threshold=0.5),
        PublishPolicy(name="{run}-rand", strategy="rand", threshold=0.5, seed=7),
        PublishPolicy(name="{run}-lin2", strategy="linear", top_k=6, max_epochs=2),
    )
    settings = ScorerSettings(store=s3_uri, policies=policies, notifications="off")
    ing = Ingestor(store, settings)
    w = run_writer(store, "auto", prompts=20, epochs=3, steps_per_epoch=2)
    w.start()
    versions = []
    for epoch, step in w.steps():
        w.write_step(epoch, step)
        ing.poll_once()
        versions.append(list_datasets(store).get("auto-lim", []))
    # epoch 0 complete once all 20 prompts were seen in it (step 1), then each further epoch: a new version.
    assert versions == [[], [1], [1], [1, 2], [1, 2], [1, 2, 3]]
    assert [read_manifest(store, "auto-lim", v)["epochs_used"] for v in (1, 2, 3)] == [1, 2, 3]
    assert list_datasets(store)["auto-lin2"] == [1, 2]  # capped at max_epochs=2: nothing new at epoch 3
    ref = score_run(store, "auto")  # the core, reading every event object directly
    final = [json.loads(x)["prompt_id"] for x in store.get("datasets/auto-lim/v3/data.jsonl").splitlines()]
    assert final == select_prompts(ref, "lim", SelectionPolicy(threshold=0.5).criterion())[1]
    rand = read_manifest(store, "auto-rand", 3)
    assert rand["counts"]["selected"] == len(final) and rand["policy"]["seed"] == 7
    assert ing.metrics.registry.get_sample_value("limr_scorer_datasets_published_total", {"dataset": "auto-lim"}) == 3
    # A restarted scorer finds nothing to do and publishes nothing new.
    Ingestor(store, settings).poll_once()
    assert list_datasets(store)["auto-lim"] == [1, 2, 3]
