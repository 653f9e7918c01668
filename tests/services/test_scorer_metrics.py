"""The scorer's LIM metrics (r_avg, score buckets, selected prompts per dataset status) and their bounded
cardinality: a finished run's series go after the retention, and come back if the run gets new objects."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from limr.curation.policy import PublishPolicy
from limr.store import open_store
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor


def _samples(ingest: Ingestor) -> dict[tuple[str, tuple], float]:
    text = generate_latest(ingest.metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def _of_run(samples: dict, run: str) -> dict:
    return {k: v for k, v in samples.items() if ("run", run) in k[1]}


def test_lim_series_per_run_and_retirement(tmp_path, run_writer):
    store = open_store(str(tmp_path))
    policy = PublishPolicy(name="{run}-lim", threshold=0.5)
    settings = ScorerSettings(store=str(tmp_path), policies=(policy,), notifications="off", metrics_retention_s=3600)
    ingest = Ingestor(store, settings)
    a = run_writer(store, "a", prompts=40, epochs=3, steps_per_epoch=2)
    b = run_writer(store, "b", prompts=20, epochs=3, steps_per_epoch=2, seed=1)
    a.start(), b.start()
    for epoch, step in a.steps():
        a.write_step(epoch, step)
        b.write_step(epoch, step)
    ingest.poll_once()
    s = _samples(ingest)
    r_avg = [s[("limr_scorer_r_avg", (("epoch", str(e)), ("run", "a")))] for e in (1, 2)]
    assert len(_of_run({k: v for k, v in s.items() if k[0] == "limr_scorer_r_avg"}, "a")) == 3  # every epoch full
    assert all(0 < x < 1 for x in r_avg)
    bucket_a = {k: v for k, v in s.items() if k[0] == "limr_scorer_score_bucket" and ("run", "a") in k[1]}
    le = {float(dict(k[1])["le"]): v for k, v in bucket_a.items()}
    buckets = [le[x] for x in sorted(le)]
    scored = s[("limr_scorer_run_prompts_scored", (("run", "a"),))]
    assert s[("limr_scorer_score_bucket", (("le", "+Inf"), ("run", "a")))] == scored == 40
    assert buckets == sorted(buckets)  # cumulative
    sel = s[("limr_scorer_dataset_selected", (("dataset", "a-lim"), ("run", "a"), ("status", "interim")))]
    version_b = ("limr_scorer_dataset_version", (("dataset", "b-lim"), ("run", "b"), ("status", "interim")))
    assert 0 < sel < 40 and s[version_b] >= 1

    a.finish()
    ingest.poll_once()
    s = _samples(ingest)
    final = ("limr_scorer_dataset_selected", (("dataset", "a-lim"), ("run", "a"), ("status", "final")))
    assert final in s and len([k for k in s if k[0] == "limr_scorer_r_avg" and ("run", "a") in k[1]]) == 3

    # past the retention the finished run's series are gone; the running one keeps its own
    retire_now = Ingestor(store, settings.model_copy(update={"metrics_retention_s": 0.0}))
    retire_now.poll_once()
    retire_now.poll_once()
    s = _samples(retire_now)
    assert _of_run(s, "a") == {} and _of_run(s, "b")
    # a late object of the finished run revives it (and makes a new final version)
    a.write_step(2, 99)
    retire_now.metrics._finished.clear()  # noqa: SLF001 - keep it from retiring again in this same pass
    retire_now.poll_once()
    assert ("limr_scorer_objects_ingested_total", (("run", "a"),)) in _samples(retire_now)
