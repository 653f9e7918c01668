"""Prometheus metrics of the scorer (`limr_scorer_*`), on a registry per ingestor so tests can run several."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from limr.curation.publish import version_status
from limr.scoring import ScoreResult

# Upper bounds of the LIM score buckets (cumulative, as a Prometheus histogram's `le`): Grafana's heatmap of the
# score distribution over time. LIM scores can be negative; the lowest bucket holds them.
SCORE_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class ScorerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter("limr_scorer_events_ingested", "Event rows counted, by run.", ["run"], registry=r)
        self.objects = Counter("limr_scorer_objects_ingested", "Event objects counted, by run.", ["run"], registry=r)
        self.quarantined = Counter(
            "limr_scorer_objects_quarantined", "Objects refused (malformed/unreadable), by run.", ["run"], registry=r
        )
        self.lag = Gauge(
            "limr_scorer_ingestion_lag_seconds",
            "Age of the oldest event object not yet ingested (0 when caught up), by run.",
            ["run"],
            registry=r,
        )
        self.behind = Gauge(
            "limr_scorer_objects_pending", "Event objects listed but not yet ingested, by run.", ["run"], registry=r
        )
        self.scoring = Histogram(
            "limr_scorer_scoring_seconds",
            "Time to rescore a run (LIM) after an epoch completes.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.published = Counter(
            "limr_scorer_datasets_published", "Dataset versions published, by dataset.", ["dataset"], registry=r
        )
        self.prompts = Gauge("limr_scorer_run_prompts", "Distinct prompts seen, by run.", ["run"], registry=r)
        self.epochs = Gauge("limr_scorer_run_epochs", "Epochs seen, by run.", ["run"], registry=r)
        self.epochs_complete = Gauge(
            "limr_scorer_run_epochs_complete", "Epochs complete (scored), by run.", ["run"], registry=r
        )
        self.checkpoints = Counter(
            "limr_scorer_checkpoints", "Checkpoint objects written, by run.", ["run"], registry=r
        )
        self.errors = Counter(
            "limr_scorer_loop_errors",
            "Failed ingestion passes: store unavailable or a bug (the pass is retried, nothing quarantined).",
            registry=r,
        )
        self.run_errors = Counter(
            "limr_scorer_run_errors",
            "Failed passes of one run (set aside and retried with backoff; the other runs go on), by run.",
            ["run"],
            registry=r,
        )
        self.runs_failing = Gauge("limr_scorer_runs_failing", "Runs whose last pass failed.", registry=r)
        self.runs = Gauge("limr_scorer_runs", "Runs being tracked.", registry=r)
        self.last_poll = Gauge("limr_scorer_last_poll_timestamp_seconds", "End of the last listing.", registry=r)
        # The LIM picture of each active run, after every rescore.
        self.r_avg = Gauge(
            "limr_scorer_r_avg", "Average accuracy of the scored prompts per epoch (LIM's r_avg), by run.",
            ["run", "epoch"], registry=r,
        )  # fmt: skip
        self.score_bucket = Gauge(
            "limr_scorer_score_bucket",
            "Scored prompts with LIM score <= le (cumulative, as histogram buckets), by run.",
            ["run", "le"],
            registry=r,
        )
        self.scored = Gauge("limr_scorer_run_prompts_scored", "Prompts with a LIM score, by run.", ["run"], registry=r)
        self.selected = Gauge(
            "limr_scorer_dataset_selected",
            "Prompts selected by the newest version of a dataset of each status (provisional, interim, final).",
            ["run", "dataset", "status"],
            registry=r,
        )
        self.dataset_version = Gauge(
            "limr_scorer_dataset_version", "Newest version number of a dataset of each status.",
            ["run", "dataset", "status"], registry=r,
        )  # fmt: skip
        self.retired: set[str] = set()  # finished runs whose series were removed (until new objects arrive)
        self._finished: dict[str, float] = {}  # run -> when its final datasets were published (monotonic)
        self._series: dict[str, set[tuple[Any, tuple[str, ...]]]] = {}  # run -> (metric, labels) set here

    def _set(self, metric: Any, labels: tuple[str, ...], value: float) -> None:
        metric.labels(*labels).set(value)
        self._series.setdefault(labels[0], set()).add((metric, labels))

    def _drop(self, run_id: str, metrics: tuple[Any, ...]) -> None:
        kept = set()
        for metric, labels in self._series.pop(run_id, set()):
            if metric in metrics:
                metric.remove(*labels)
            else:
                kept.add((metric, labels))
        if kept:
            self._series[run_id] = kept

    def observe_scores(self, run_id: str, result: ScoreResult) -> None:
        """r_avg per epoch and the score distribution of the run's latest scoring."""
        self._drop(run_id, (self.r_avg, self.score_bucket))  # a rescore may cover fewer epochs: no stale series
        for epoch, value in enumerate(result.r_avg if result.r_avg is not None else []):
            self._set(self.r_avg, (run_id, str(epoch + 1)), float(value))
        scores = np.sort(np.asarray(result.scores, dtype=np.float64))  # (K,)
        for le in SCORE_BUCKETS:
            self._set(self.score_bucket, (run_id, repr(le)), int(np.searchsorted(scores, le, side="right")))
        self._set(self.score_bucket, (run_id, "+Inf"), len(scores))
        self._set(self.scored, (run_id,), len(scores))

    def observe_version(self, run_id: str, manifest: dict[str, Any]) -> None:
        """A version published (or found identical) for the run: its size under its dataset and status."""
        labels = (run_id, str(manifest.get("name")), version_status(manifest))
        self._set(self.selected, labels, (manifest.get("counts") or {}).get("selected") or 0)
        self._set(self.dataset_version, labels, manifest.get("version") or 0)

    def finished(self, run_id: str) -> None:
        """The run's final datasets are published: its series go after `retire_due`'s retention."""
        self._finished.setdefault(run_id, time.monotonic())

    def retire_due(self, retention_s: float, listed: list[str]) -> None:
        """Retire the runs finished `retention_s` ago, and those no longer in the store."""
        now = time.monotonic()
        known = {*self._series, *self._finished}
        for run_id in sorted(known - self.retired):
            if run_id not in listed or now - self._finished.get(run_id, now + 1) >= retention_s:
                self.retire(run_id)

    def retire(self, run_id: str) -> None:
        """Remove every series of a run that is over (bounded cardinality: the active runs only). Prometheus
        keeps their history; the scorer exports the run again if it gets new objects (`revive`)."""
        self.retired.add(run_id)
        self._finished.pop(run_id, None)
        self._drop(run_id, (self.r_avg, self.score_bucket, self.scored, self.selected, self.dataset_version))
        for metric in (self.events, self.objects, self.quarantined, self.lag, self.behind, self.prompts,
                       self.epochs, self.epochs_complete, self.checkpoints, self.run_errors):  # fmt: skip
            try:
                metric.remove(run_id)
            except KeyError:  # never set for this run
                pass

    def set_run(self, run_id: str, gauge: Gauge, value: float) -> None:
        """Set a per-run gauge, unless the run is retired (its series must not come back while it is over)."""
        if run_id not in self.retired:
            gauge.labels(run_id).set(value)

    def revive(self, run_id: str) -> None:
        self.retired.discard(run_id)
