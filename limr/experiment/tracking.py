"""The study in the experiment tracker: each arm's runs are tracked by the learner (`metrics.tracking`, one tracker
run per limr run id, in an experiment named after the study); the study itself gets one more run,
`{name}-study`, with its config, each arm's held-out accuracy and the study's plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from limr.experiment.config import ExperimentConfig
from limr.tracking import TrackerInfo, open_tracker

PLOTS = (
    "leaderboard.png",
    "accuracy_vs_step.png",
    "accuracy_vs_tokens.png",
    "lim_trajectories.png",
    "score_histogram.png",
)


def tracked(cfg: ExperimentConfig, spec: str | None) -> ExperimentConfig:
    """The study with every learner run tracked by `spec`, grouped under the study's name."""
    if not spec:
        return cfg
    overrides = {**cfg.learner_overrides, "metrics.tracking": spec, "name": cfg.name}
    return cfg.model_copy(update={"learner_overrides": overrides})


def log_study(spec: str, cfg: ExperimentConfig, out: Path, summary: dict[str, Any]) -> TrackerInfo:
    """One tracker run for the whole study: config, per-arm final accuracy (mean and std over seeds) and plots."""
    tracker = open_tracker(spec, f"{cfg.name}-study", experiment=cfg.name, tags={"limr.study": cfg.name})
    try:
        tracker.log_params(cfg.model_dump(mode="json"))
        figures: dict[str, float] = {}
        for arm in summary.get("arms", []):
            for key in ("final_mean", "final_std", "best_mean", "best_std", "pool_size", "total_tokens_mean"):
                value = arm.get(key)
                if isinstance(value, int | float):
                    figures[f"arms/{arm['name']}/{key}"] = float(value)
        lim = summary.get("lim") or {}
        figures |= {f"lim/{k}": float(lim[k]) for k in ("selected", "scored") if isinstance(lim.get(k), int | float)}
        tracker.log_metrics(figures, int(summary.get("steps") or 0))
        for name in PLOTS:
            if (out / name).exists():
                tracker.log_image(out / name)
    except BaseException:
        tracker.close(failed=True)
        raise
    tracker.close()
    return tracker.info
