"""The scorer's ingestion loop: discover runs, count new event objects exactly once, rescore, publish.

Per run: list `runs/{run}/events/` after the checkpoint's cursor (portable on every S3 server), count each
new object into the run's EpochCounts, and persist counts + cursor + ingested keys in one checkpoint PUT
every `checkpoint_every` objects (at most once per `checkpoint_min_interval_s`) and at the end of every
batch. Every `rescan_interval_s` a full listing catches objects that appeared below the cursor (parallel
writers finishing out of order); the ingested-key set keeps that exactly-once.
Objects that are at fault (unreadable Parquet, wrong schema, rows of another run, NaN rewards) are quarantined
(recorded with the error) and never block the rest. Anything else, a transient store error or a bug, fails
the pass (counted in limr_scorer_loop_errors_total, which the chart alerts on) and the object is retried.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
import time
from collections.abc import Callable

from limr.algo.selection import SelectionError
from limr.curation.bounds import check_bounds
from limr.curation.early import provisional_result, run_epochs
from limr.curation.policy import PolicyError
from limr.curation.progress import complete_epochs, read_run_prompts
from limr.curation.publish import publish_version
from limr.curation.snapshot import write_scores_snapshot
from limr.curation.state import (
    QuarantineRecord,
    RunState,
    load_checkpoint,
    quarantine_key,
    save_checkpoint,
    status_key,
)
from limr.events.attempts import Attempts, parse_event_key, read_attempts
from limr.events.io import EventSchemaError, PromptRecord, read_events_object
from limr.events.run import list_runs, run_finished
from limr.events.schema import EVENT_KEY_RE, REQUIRED_EVENT_COLUMNS, events_prefix
from limr.scoring import EmptyRun, EventDataError, ScoreResult, count_run, score_counts
from limr.scoring.rule import apply_rule, rule_columns
from limr.scoring.run import check_rewards
from limr.store import InvalidKey, ObjectInfo, ObjectNotFound, ObjectStore, StoreError
from services.scorer.config import ScorerSettings
from services.scorer.failures import FailingRuns
from services.scorer.metrics import ScorerMetrics

log = logging.getLogger("limr.scorer")


class Ingestor:
    """State and one-pass operations of the scorer; `run` loops them until stopped."""

    def __init__(
        self,
        store: ObjectStore,
        settings: ScorerSettings,
        metrics: ScorerMetrics | None = None,
        on_commit: Callable[[str, list[str]], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics or ScorerMetrics()
        self.on_commit = on_commit  # called after each checkpoint with (run_id, keys it newly covers)
        self.states: dict[str, RunState] = {}
        self._pool: dict[str, list[PromptRecord] | None] = {}
        self._pool_size: dict[str, int | None] = {}
        self._pool_checked: dict[str, float] = {}
        self._last_rescan: dict[str, float] = {}
        self._epochs_planned: dict[str, int | None] = {}
        self._epochs_checked: dict[str, float] = {}
        self._runs: list[str] = []
        self._runs_listed_at = 0.0
        self._last_commit = 0.0
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.ready = threading.Event()  # set after the first complete pass
        self.last_error: str | None = None  # the last pass failed as a whole (the runs/ listing)
        self.bounds = settings.bounds()
        self.failing = FailingRuns(settings.poll_interval_s, settings.run_retry_max_s)
        self.rule = settings.correct_rule()  # None: the events' own correct flags
        self._columns = (*REQUIRED_EVENT_COLUMNS, *rule_columns(self.rule))

    # -- discovery -------------------------------------------------------------------------------
    def runs(self, force: bool = False) -> list[str]:
        now = time.monotonic()
        if force or not self._runs or now - self._runs_listed_at >= self.settings.runs_refresh_s:
            self._runs = [r for r in list_runs(self.store) if fnmatch.fnmatchcase(r, self.settings.runs)]
            self._runs_listed_at = now
            self.metrics.runs.set(len(self._runs))
        return self._runs

    def state(self, run_id: str) -> RunState:
        if run_id not in self.states:
            state = load_checkpoint(self.store, self.settings.state_prefix, run_id) or RunState(run_id)
            self.states[run_id] = state
            self._publish_gauges(state)
        return self.states[run_id]

    # -- one pass --------------------------------------------------------------------------------
    def poll_once(self) -> int:
        """Ingest whatever is new in every run; returns the number of objects ingested or quarantined.

        A run whose pass fails is set aside (reported in /v1/status and `limr_scorer_run_errors_total`,
        retried with backoff) and the other runs go on; only a failure to list the runs fails the pass."""
        done = 0
        for run_id in self.runs(force=not self.ready.is_set()):
            if self.stop_event.is_set():
                break
            if not self.failing.due(run_id):
                continue
            try:
                done += self.poll_run(run_id)
            except Exception as e:  # noqa: BLE001 - whatever one run's data or state does, the others go on
                self._run_failed(run_id, e)
            else:
                if self.failing.recovered(run_id):
                    log.info("run %s recovered", run_id)
        self.metrics.runs_failing.set(len(self.failing.runs))
        self.metrics.retire_due(self.settings.metrics_retention_s, self._runs)
        self.metrics.last_poll.set(time.time())
        return done

    def _run_failed(self, run_id: str, error: Exception) -> None:
        store_fault = isinstance(error, (StoreError, OSError)) and not isinstance(error, (ObjectNotFound, InvalidKey))
        failure = self.failing.failed(run_id, error, transient=store_fault)
        self.metrics.errors.inc()
        self.metrics.run_errors.labels(run_id[:128]).inc()
        log.error("run %s set aside (%d failed passes): %s", run_id, failure.failures, failure.error, exc_info=error)
        # Its in-memory counts may hold part of an object: drop them, the run's checkpoint is the truth.
        self.states.pop(run_id, None)

    def poll_run(self, run_id: str) -> int:
        attempts = read_attempts(self.store, run_id)
        state = self.state(run_id)
        if state.attempt != attempts.latest:  # the run resumed: recount it under the new record, from scratch
            log.info("run %s resumed (attempt %d): recounting its events", run_id, attempts.latest)
            state = self.states[run_id] = RunState(run_id, attempt=attempts.latest)
            self._last_rescan.pop(run_id, None)
        newly_finished = False
        if state.finished_epochs is None:
            # Read the marker BEFORE listing: it is the run's last object, so this listing sees every event.
            marker = run_finished(self.store, run_id)
            if marker is not None:
                state.finished_epochs, newly_finished = marker.epochs, True
        now = time.monotonic()
        full = newly_finished or now - self._last_rescan.get(run_id, 0.0) >= self.settings.rescan_interval_s
        infos = list(self.store.list(events_prefix(run_id), start_after=None if full else state.cursor))
        if full:
            self._last_rescan[run_id] = now
        if any((p := parse_event_key(i.key)) and p[1] > attempts.latest for i in infos):
            self.wake.set()  # events of a resume recorded after we read attempts.json: read it again first
            return 0
        pending = [i for i in infos if not state.seen(i.key) and not _superseded(attempts, i.key)]
        # oldest_after[n]: oldest last_modified among pending[n:], so the lag gauge stays O(1) per object.
        oldest_after = [0.0] * (len(pending) + 1)
        oldest_after[-1] = float("inf")
        for n in range(len(pending) - 1, -1, -1):
            oldest_after[n] = min(pending[n].last_modified, oldest_after[n + 1])
        self._set_lag(run_id, oldest_after[0], len(pending))
        new_keys: list[str] = []
        for n, info in enumerate(pending, 1):
            if self.stop_event.is_set():
                break
            self._ingest_one(state, info)
            new_keys.append(info.key)
            since = time.monotonic() - self._last_commit
            if len(new_keys) >= self.settings.checkpoint_every and since >= self.settings.checkpoint_min_interval_s:
                self._commit(state, new_keys)
                new_keys = []
            self._set_lag(run_id, oldest_after[n], len(pending) - n)
        if new_keys:
            self._commit(state, new_keys)
        if state.finished_epochs is None:
            self._maybe_rescore(state)
        else:
            self._maybe_finalize(state)
        return len(pending)

    def _ingest_one(self, state: RunState, info: ObjectInfo) -> None:
        key = info.key
        if not EVENT_KEY_RE.match(key):
            self._quarantine(state, key, "foreign object under events/ (expected {step:010d}-{part:04d}.parquet)")
            return
        try:
            table = read_events_object(self.store, key, self._columns)
            where = f"{self.store.uri}/{key}"
            check_rewards(table, where)
            table = apply_rule(table, self.rule, where)
            runs = set(table.column("run_id").unique().to_pylist())
            if runs - {state.run_id}:
                raise EventSchemaError(f"{key}: rows of run(s) {sorted(runs - {state.run_id})} in run {state.run_id}")
            check_bounds(table, state.counts, self.bounds, self.planned_epochs(state.run_id), where)
            state.counts.add_table(table, key)
        except ObjectNotFound:
            self._quarantine(state, key, "object vanished between listing and reading")
            return
        except (EventSchemaError, EventDataError) as e:  # the object's fault: schema, Parquet, foreign rows, data
            self._quarantine(state, key, f"{type(e).__name__}: {e}")
            return
        # Anything else (a transient StoreError, or a bug in counting) propagates: the pass fails, `run`
        # counts it in limr_scorer_loop_errors_total and reloads the checkpoint, and the object is retried.
        state.ingested.add(key)
        state.events += table.num_rows
        state.cursor = max(state.cursor or "", key)
        state.last_object_time = max(state.last_object_time or 0.0, info.last_modified)
        state.last_update = time.time()
        self.metrics.objects.labels(state.run_id).inc()
        self.metrics.events.labels(state.run_id).inc(table.num_rows)

    def _quarantine(self, state: RunState, key: str, error: str) -> None:
        log.warning("quarantined %s: %s", key, error)
        record = QuarantineRecord(key=key, error=error, at=time.time())
        state.quarantined[key] = record
        if EVENT_KEY_RE.match(key):  # a foreign name (README.txt) may sort after all future event keys
            state.cursor = max(state.cursor or "", key)
        self.metrics.quarantined.labels(state.run_id).inc()
        name = key.rsplit("/", 1)[-1]
        qkey = quarantine_key(self.settings.state_prefix, state.run_id, name)
        self.store.put(qkey, json.dumps(record.to_dict(), indent=2).encode(), "application/json")

    def _commit(self, state: RunState, new_keys: list[str]) -> None:
        if new_keys:
            self.metrics.revive(state.run_id)
        save_checkpoint(self.store, self.settings.state_prefix, state)
        self.failing.recovered(state.run_id)  # it makes progress: a later failure backs off from the start again
        self._last_commit = time.monotonic()
        self.metrics.checkpoints.labels(state.run_id).inc()
        self._publish_gauges(state)
        self._write_status(state)
        if self.on_commit:
            self.on_commit(state.run_id, new_keys)

    # -- scoring and publishing ------------------------------------------------------------------
    def _pool_records(self, run_id: str) -> list[PromptRecord] | None:
        self._load_pool(run_id)
        return self._pool.get(run_id)

    def pool_size(self, run_id: str) -> int | None:
        """Prompts per epoch (see `read_run_prompts`)."""
        self._load_pool(run_id)
        return self._pool_size.get(run_id)

    def planned_epochs(self, run_id: str) -> int | None:
        """run.json `epochs` (None until run.json says), read once per run: a bound on event rows."""
        if self._epochs_planned.get(run_id) is None:
            now = time.monotonic()
            if now - self._epochs_checked.get(run_id, -1e9) >= self.settings.runs_refresh_s:
                self._epochs_planned[run_id] = run_epochs(self.store, run_id)
                self._epochs_checked[run_id] = now
        return self._epochs_planned.get(run_id)

    def _load_pool(self, run_id: str, force: bool = False) -> None:
        # Writers put run.json first and prompts.parquet next: keep looking (at the runs refresh pace) until
        # both are known, or datasets would be published without prompt texts.
        now = time.monotonic()
        if self._pool.get(run_id) is None and (
            force or now - self._pool_checked.get(run_id, -1e9) >= self.settings.runs_refresh_s
        ):
            self._pool[run_id], self._pool_size[run_id] = read_run_prompts(self.store, run_id)
            self._pool_checked[run_id] = now

    def epochs_complete(self, state: RunState) -> int:
        """Epochs that can no longer change: all of them once the run is finished."""
        if state.finished_epochs is not None:
            return state.counts.num_epochs
        return complete_epochs(state.counts, self.pool_size(state.run_id))

    def _maybe_rescore(self, state: RunState) -> None:
        """A running run: score its completed epochs from the in-memory counts, publish running versions."""
        complete = self.epochs_complete(state)
        self.metrics.set_run(state.run_id, self.metrics.epochs_complete, complete)
        covered = int(state.counts.total[:, :complete].sum()) if complete else 0
        if complete == 0 or (complete, covered) == (state.scored_epochs, state.scored_events):
            return  # nothing new in the completed epochs (late objects below the newest epoch do count)
        t0 = time.perf_counter()
        result = score_counts(state.counts, complete)
        write_scores_snapshot(self.store, self.settings.state_prefix, state, result)
        self.metrics.observe_scores(state.run_id, result)
        self.metrics.scoring.observe(time.perf_counter() - t0)
        self._publish(state, result, lambda epochs: score_counts(state.counts, epochs), final=False)
        state.scored_epochs, state.scored_events = complete, covered
        self._commit(state, [])

    def _maybe_finalize(self, state: RunState) -> None:
        """A finished run: score every epoch exactly as `limr score` does (`count_run` over the ingested
        objects, gap filling, left-out prompts) and publish final versions, once per set of ingested objects."""
        self.metrics.set_run(state.run_id, self.metrics.epochs_complete, self.epochs_complete(state))
        if state.final_objects == state.objects:
            self.metrics.finished(state.run_id)
            return
        t0 = time.perf_counter()
        try:
            run = count_run(self.store, state.run_id, keys=sorted(state.ingested), correct=self.rule)
        except (EmptyRun, EventSchemaError, EventDataError) as e:  # e.g. events of ids not in prompts.parquet
            log.error("run %s is finished but has no final dataset: %s", state.run_id, e)
            state.final_error, state.final_objects = str(e), state.objects
            self._commit(state, [])
            return
        result = run.score()
        write_scores_snapshot(self.store, self.settings.state_prefix, state, result)
        self.metrics.observe_scores(state.run_id, result)
        self.metrics.scoring.observe(time.perf_counter() - t0)
        self._publish(state, result, run.score, final=True)
        state.scored_epochs, state.scored_events = result.epochs, int(state.counts.total.sum())
        state.final_objects, state.final_error = state.objects, None
        self._commit(state, [])
        log.info("run %s finished: final datasets over %d epochs", state.run_id, result.epochs)

    def _publish(
        self, state: RunState, result: ScoreResult, score_epochs: Callable[[int], ScoreResult], final: bool
    ) -> None:
        """Publish a version per applicable policy; `result` scores every available epoch and
        `score_epochs(E)` the first E (for policies with max_epochs)."""
        self._load_pool(state.run_id, force=True)  # publishing needs the prompt texts if they exist by now
        prompts = self._pool.get(state.run_id)
        available = result.epochs
        for policy in self.settings.policies:
            needed = policy.min_epochs if final else max(policy.min_epochs, policy.early_epochs or 1)
            if not policy.applies_to(state.run_id) or available < needed:
                continue
            try:
                name = policy.dataset_name(state.run_id)
                epochs = min(available, policy.max_epochs or available)
                scored = result if epochs == available else score_epochs(epochs)
                extra: dict[str, object] = {"publisher": "scorer"}
                if not final:  # an early-LIM policy before the run's last epoch publishes predicted scores
                    early = provisional_result(
                        state.counts,
                        available,
                        policy,
                        run_epochs(self.store, state.run_id),
                        self.pool_size(state.run_id),
                    )
                    if early is not None:
                        scored, extra = early.result, extra | early.describe()
                outcome = publish_version(
                    self.store,
                    name,
                    state.run_id,
                    scored,
                    policy.selection(),
                    prompts,
                    owner=f"scorer:{self.settings.state_prefix}",
                    extra=extra,
                    final=final,
                )
            except (PolicyError, SelectionError) as e:  # a policy that cannot apply to this run: skip it
                log.error("policy %s on run %s failed: %s", policy.name, state.run_id, e)
                self.metrics.errors.inc()
                continue
            self.metrics.observe_version(state.run_id, outcome.manifest)
            if outcome.created:
                self.metrics.published.labels(name).inc()
                log.info("published %s v%s%s", name, outcome.manifest["version"], " (final)" if final else "")

    # -- observability ---------------------------------------------------------------------------
    def _set_lag(self, run_id: str, oldest: float, pending: int) -> None:
        """Lag = age of the oldest object listed but not yet ingested (0 when caught up)."""
        self.metrics.set_run(run_id, self.metrics.lag, max(0.0, time.time() - oldest) if pending else 0.0)
        self.metrics.set_run(run_id, self.metrics.behind, pending)

    def _publish_gauges(self, state: RunState) -> None:
        self.metrics.set_run(state.run_id, self.metrics.prompts, state.counts.num_prompts)
        self.metrics.set_run(state.run_id, self.metrics.epochs, state.counts.num_epochs)

    def _write_status(self, state: RunState) -> None:
        """A small JSON summary for the query API (informational; the checkpoint is the truth)."""
        status = run_status(state, self.epochs_complete(state))
        key = status_key(self.settings.state_prefix, state.run_id)
        self.store.put(key, json.dumps(status).encode(), "application/json")

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> None:
        """Poll until `stop_event`; transient errors are logged and retried with the poll interval."""
        while not self.stop_event.is_set():
            try:
                busy = self.poll_once() > 0
                self.ready.set()
                self.last_error = None
            except Exception as e:  # noqa: BLE001 - keep serving; /readyz reports the error, the alert fires
                self.last_error = f"{type(e).__name__}: {e}"
                self.metrics.errors.inc()
                log.exception("ingestion pass failed")
                busy = False
            if not busy:
                self.wake.wait(self.settings.poll_interval_s)
                self.wake.clear()


def _superseded(attempts: Attempts, key: str) -> bool:
    parsed = parse_event_key(key)
    return parsed is not None and attempts.superseded(*parsed)


def run_status(state: RunState, epochs_complete: int) -> dict:
    return {
        "run_id": state.run_id,
        "events": state.events,
        "objects": state.objects,
        "quarantined": len(state.quarantined),
        "prompts": state.counts.num_prompts,
        "epochs_seen": state.counts.num_epochs,
        "epochs_complete": epochs_complete,
        "scored_epochs": state.scored_epochs,
        "finished": state.finished_epochs is not None,
        "final_published": state.final_objects is not None and state.final_error is None,
        "final_error": state.final_error,
        "cursor": state.cursor,
        "last_update": state.last_update,
        "last_object_time": state.last_object_time,
    }
