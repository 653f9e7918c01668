"""Early selection: score a run from its first K complete epochs with an early-LIM predictor.

`limr score --early K`, `limr select --early K` and the scorer's provisional dataset versions all go
through `early_score_counts`, so they agree. The result is a `ScoreResult` whose scores are the *predicted*
final LIM scores (selection by threshold then picks the predicted selection), plus the prediction itself
(probability of selection per prompt, predicted precision). See `limr.algo.early_lim` and docs/lim.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from limr.algo.early_lim import DEFAULT_PREDICTOR, EarlyPrediction, predict_final
from limr.curation.policy import PublishPolicy
from limr.curation.progress import complete_epochs, read_run_prompts
from limr.events.correct import CorrectRule
from limr.events.run import read_run_meta, run_finished
from limr.events.schema import run_json_key
from limr.scoring import EpochCounts, ScoreResult, accumulate_run, score_counts
from limr.scoring.run import EmptyRun, RunNotFound
from limr.store import ObjectNotFound, ObjectStore


class EarlyError(ValueError):
    """An early selection that cannot be made (too few complete epochs, unknown length of the run...)."""


@dataclass(frozen=True)
class EarlyResult:
    result: ScoreResult  # prompts with a complete K-epoch trajectory; `scores` = predicted final LIM scores
    prediction: EarlyPrediction
    epochs_total: int  # E, the run's planned epochs

    @property
    def epochs_seen(self) -> int:
        return self.prediction.epochs_seen

    def describe(self) -> dict[str, Any]:
        """What a manifest or a summary says about the early selection."""
        pred = self.prediction
        precision = pred.predicted_precision()
        return {
            "provisional": pred.epochs_seen < self.epochs_total,
            "epochs_used": pred.epochs_seen,
            "epochs_total": self.epochs_total,
            "predictor": pred.predictor,
            "predicted_precision": None if np.isnan(precision) else round(precision, 4),
            "predicted_selected": int(pred.selected.sum()),
        }


def run_epochs(store: ObjectStore, run_id: str) -> int | None:
    """The run's planned epochs from run.json (`epochs`, or `config.epochs` / `config.run.epochs`); None if
    run.json does not say."""
    if not store.exists(run_json_key(run_id)):
        return None
    try:
        meta = read_run_meta(store, run_id)
    except (ValueError, ObjectNotFound):
        return None
    config = meta.config or {}
    run = config.get("run")
    run_cfg: dict[str, Any] = run if isinstance(run, dict) else {}
    for value in ((meta.model_extra or {}).get("epochs"), config.get("epochs"), run_cfg.get("epochs")):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    return None


def early_score_counts(
    counts: EpochCounts,
    epochs_seen: int,
    epochs_total: int,
    threshold: float,
    *,
    pool_size: int | None = None,
    finished: bool = False,
    predictor: str = DEFAULT_PREDICTOR,
    prompts: dict[str, str] | None = None,
    source: str = "",
) -> EarlyResult:
    """Predict the final LIM selection at `threshold` from the first `epochs_seen` complete epochs (every epoch
    seen is complete once the run is `finished`)."""
    k, e = int(epochs_seen), int(epochs_total)
    complete = counts.num_epochs if finished else complete_epochs(counts, pool_size)
    if k < 1:
        raise EarlyError(f"--early must be >= 1, got {k}")
    if k > e:
        raise EarlyError(f"{source}: --early {k} is more than the run's {e} epochs")
    if k > complete:
        raise EarlyError(f"{source}: --early {k} needs {k} complete epochs, the run has {complete} so far")
    seen = score_counts(counts, max_epochs=k, prompts=prompts, source=source)  # ids, left-out reasons
    total = np.asarray(counts.total)[:, :k]
    samples = float(total[total > 0].mean()) if (total > 0).any() else 1.0
    pred = predict_final(counts.accuracy(), k, e, threshold, predictor=predictor, samples=samples)
    result = dataclasses.replace(seen, scores=pred.scores)
    result.source = f"{source}, epochs 0-{k - 1} of {e}, predicted by {pred.predictor}"
    return EarlyResult(result, pred, e)


def early_score_run(
    store: ObjectStore,
    run_id: str,
    epochs_seen: int,
    threshold: float,
    *,
    epochs_total: int | None = None,
    predictor: str = DEFAULT_PREDICTOR,
    correct: CorrectRule | None = None,
) -> EarlyResult:
    """`early_score_counts` of a run in the store; its length comes from run.json unless given."""
    e = epochs_total or run_epochs(store, run_id)
    if e is None:
        raise EarlyError(
            f"{store.uri}/{run_json_key(run_id)}: the run's planned epochs are unknown (no 'epochs' in run.json);"
            " give --epochs-total"
        )
    counts, _, _ = accumulate_run(store, run_id, rule=correct)
    if counts.events == 0:
        if not store.list_keys(f"runs/{run_id}/"):
            raise RunNotFound(f"{store.uri}: no run {run_id!r} (no {run_json_key(run_id)}, no events)")
        raise EmptyRun(f"{store.uri}: run {run_id!r} has no events")
    records, pool_size = read_run_prompts(store, run_id)
    prompts = {r.prompt_id: r.prompt for r in records} if records else None
    return early_score_counts(
        counts,
        epochs_seen,
        e,
        threshold,
        pool_size=pool_size,
        finished=run_finished(store, run_id) is not None,
        predictor=predictor,
        prompts=prompts,
        source=f"run {run_id}",
    )


def provisional_result(
    counts: EpochCounts,
    complete: int,
    policy: PublishPolicy,
    epochs_total: int | None,
    pool_size: int | None = None,
    source: str = "",
) -> EarlyResult | None:
    """What a policy with `early_epochs` K publishes after `complete` epochs: the prediction from all of them
    while K <= complete < E; None before K and once the run has all its epochs (then plain LIM is final)."""
    if policy.early_epochs is None or complete < policy.early_epochs:
        return None
    if epochs_total is None:
        raise EarlyError(f"{source}: early_epochs needs the run's planned epochs, and run.json has no 'epochs'")
    if complete >= epochs_total:
        return None
    if policy.threshold is None:
        raise EarlyError(f"policy {policy.name!r}: early_epochs needs a threshold")
    return early_score_counts(counts, complete, epochs_total, policy.threshold, pool_size=pool_size, source=source)
