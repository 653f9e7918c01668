"""Prometheus metrics of the scorer (`limr_scorer_*`), on a registry per ingestor so tests can run several."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
