"""`limr experiment`: the LIMR study end to end through the real system, one arm and seed at a time.

    warm start -> pool and held-out files -> Ray + one rollout service (reused by every run)
    -> scorer + dataset API processes -> FULL (source seed first; the scorer publishes its LIM version)
    -> RAND of the same size published through the API -> LIM, RAND, dynamic sampling, ... (pools via the API)
    -> curves from the store -> results.json, results.md, plots

Every run starts from the same warm start and has FULL's step and sample budget. Finished runs are found
in the store and reused, so an interrupted study continues where it stopped.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from limr.events.schema import metrics_prefix
from limr.experiment.arms import (
    RunPlan,
    clear_run,
    early_dataset_template,
    early_runs,
    is_finished,
    lim_dataset,
    plan_runs,
    prompts_for,
    subset_dataset,
)
from limr.experiment.config import ExperimentConfig
from limr.experiment.final_eval import evaluate_final, has_final_eval
from limr.experiment.inputs import StudyInputs, prepare_inputs
from limr.learner.config import LearnerConfig, load_config
from limr.store import open_store

log = logging.getLogger("limr.experiment")


@dataclass
class StudyState:
    """What the study found on the way, for results.json."""

    versions: dict[str, str] = field(default_factory=dict)  # pool source -> dataset://NAME@VERSION
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)  # run ids found finished in the store
    seconds: dict[str, float] = field(default_factory=dict)  # run id -> wall seconds (runs trained now)
    api_downloads: int | None = None  # version data downloads the dataset API served during this invocation


def base_learner(cfg: ExperimentConfig, inputs: StudyInputs, store: str, out: Path) -> LearnerConfig:
    """The learner config every run starts from: the base config, its overrides, the study's model and data."""
    overrides = dict(cfg.learner_overrides)
    overrides.update(
        {
            "model.actor": str(inputs.model),
            "data.prompts": str(inputs.pool),
            "data.eval_prompts": str(inputs.held_out),
            "run.store": store,
            "run.epochs": cfg.epochs,
            "run.max_steps": None,  # the budget is `epochs` over the pool; a base config's step cap must not cut it
            "run.eval_every": cfg.eval_every,
            "metrics.progress": False,  # the study's own display follows the runs through the store
            "metrics.port": 0,
        }
    )
    learner = load_config(cfg.learner, overrides)
    if learner.trainer.ray_storage_path is None:
        # Ray Train resumes a run name it finds in its storage: keep this study's runs apart from any other's
        trainer = learner.trainer.model_copy(update={"ray_storage_path": str(out / "ray-train")})
        learner = learner.model_copy(update={"trainer": trainer})
    return learner


def run_config(
    base: LearnerConfig, plan: RunPlan, prompts: str, pool_size: int, datasets_url: str, early_epochs: int = 2
) -> LearnerConfig:
    """One run: its id, seed, pool, curation; as many epochs over its pool as FULL's step budget takes."""
    dynamic = plan.arm.curation in ("dynamic", "greso")
    early = {"mode": "early-lim", "early_epochs": early_epochs, "early_dataset": early_dataset_template()}
    mode = {"greso": {"mode": "greso"}, "early-lim": early}.get(plan.arm.curation, {})
    epochs = math.ceil(plan.steps / math.ceil(pool_size / base.batch.rollout_batch_size))
    return base.model_copy(
        update={
            "run": base.run.model_copy(
                update={"run_id": plan.run_id, "seed": plan.seed, "epochs": epochs, "max_steps": plan.steps}
            ),
            "data": base.data.model_copy(update={"prompts": prompts, "datasets_url": datasets_url}),
            "curation": base.curation.model_copy(update={"dynamic_sampling": dynamic, **mode}),
        }
    )


def epochs_budget(plan: RunPlan, epochs: int, pool_size: int, batch: int) -> RunPlan:
    """An arm trained for FULL's number of epochs over its own pool (`budget: epochs`): as many steps as `epochs`
    passes over `pool_size` prompts take at `batch` prompts a step."""
    return replace(plan, steps=epochs * math.ceil(pool_size / batch))


class StepFollower:
    """Follows the current run's per-step metrics in the store and updates the study's one progress line."""

    def __init__(self, store, plans: list[RunPlan], bar) -> None:
        self.store, self.bar = store, bar
        self.total = sum(p.steps for p in plans)
        self.done_before = 0  # steps of runs already completed (or reused)
        self.plan: RunPlan | None = None
        self.trained_steps, self.trained_seconds = 0, 0.0  # for the ETA: steps trained in this invocation
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="limr-experiment-progress", daemon=True)
        self._thread.start()

    def start(self, plan: RunPlan) -> None:
        self.plan, self._t0 = plan, time.monotonic()
        self.refresh()

    def finish(self, plan: RunPlan, trained: bool) -> None:
        if trained:
            self.trained_steps += plan.steps
            self.trained_seconds += time.monotonic() - self._t0
        self.done_before += plan.steps
        self.plan = None
        self.refresh()

    def _steps_now(self) -> int:
        if self.plan is None:
            return 0
        return sum(1 for _ in self.store.list(metrics_prefix(self.plan.run_id)))

    def refresh(self) -> None:
        now = self._steps_now()
        done = self.done_before + now
        steps = self.trained_steps + now
        seconds = self.trained_seconds + (time.monotonic() - self._t0 if self.plan else 0.0)
        eta = ""
        if steps:
            left = (self.total - done) * seconds / steps
            eta = f", ETA {int(left // 60)} min {int(left % 60):02d} s"
        where = f"{self.plan.label}, step {now}/{self.plan.steps}" if self.plan else "between runs"
        self.bar.update(completed=done, total=self.total, status=where + eta)

    def _loop(self) -> None:
        while not self._stop.wait(2.0):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - a listing hiccup must not end the study; the next refresh retries
                log.exception("progress refresh failed")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class StudyNotFinishedError(RuntimeError):
    """A report of finished runs only was asked for before the run every curated pool comes from finished."""


class SharedRollout:
    """One local Ray head and one rollout service for every run of the study, started when the first run that
    trains needs them (a study whose runs are all in the store starts neither)."""

    def __init__(self, base: LearnerConfig, app: str) -> None:
        self.base, self.app, self.started = base, app, False

    def ray(self) -> None:
        from limr.learner.launch import ensure_ray

        ensure_ray(self.base)  # in a RayJob: the cluster ($RAY_ADDRESS), else a local Ray

    def config(self) -> LearnerConfig:
        """The base learner config, pointing at the running service (started now if needed)."""
        if not self.started:
            from ray import serve

            from limr.learner.generator.service import rollout_args
            from limr.rollout.app import build_app

            self.ray()
            serve.run(build_app(rollout_args(self.base, self.app)), name=self.app, route_prefix=f"/{self.app}")
            self.started = True
        return self.base.model_copy(update={"rollout": self.base.rollout.model_copy(update={"app_name": self.app})})

    def close(self) -> None:
        if self.started:
            from ray import serve

            serve.delete(self.app)
            self.started = False


def run_study(
    cfg: ExperimentConfig, store_uri: str, out: Path, echo, *, train: bool = True
) -> tuple[StudyInputs, list[RunPlan], StudyState]:
    """Train every run of the study (reusing finished ones) and return what the report needs. With `train=False`
    nothing trains: the report covers the runs the store has finished (a study run in parts), and the plans
    returned are those runs only."""
    from limr.console import progress
    from limr.experiment.services import curation_services
    from limr.learner.checkpoint import latest_checkpoint
    from limr.learner.launch import run_with_ray

    store = open_store(store_uri)
    store_uri = store.uri
    t0 = time.monotonic()
    echo("warm start and pool")
    inputs = prepare_inputs(cfg.pool, cfg.warm_start, out)
    base = base_learner(cfg, inputs, store_uri, out)
    steps = base.derive(inputs.pool_size).total_steps
    plans = plan_runs(cfg, steps)
    batch = base.batch.rollout_batch_size
    full = cfg.full_arm()
    source = next(p for p in plans if p.arm is full and p.seed == cfg.source_seed())
    state = StudyState()
    state.seconds["prepare"] = time.monotonic() - t0
    echo(
        f"{len(plans)} runs ({', '.join(f'{a.name} x{len(cfg.seeds_of(a))}' for a in cfg.arms)}), "
        f"{steps} steps each, pool {inputs.pool_size} prompts; store {store_uri}"
    )

    rollout = SharedRollout(base, f"limr-rollout-{cfg.name}"[:60])
    svc_cfg = cfg.services
    with (
        curation_services(
            store_uri, source.run_id, lim_dataset(cfg), cfg.lim.threshold, svc_cfg.scorer_port, svc_cfg.datasets_port,
            svc_cfg.poll_interval_s, out / "services.log", svc_cfg.host,
            early_runs=early_runs(cfg), early_epochs=cfg.lim.early_epochs,
        ) as svc,
        progress("study", total=sum(p.steps for p in plans)) as bar,
    ):  # fmt: skip
        follower = StepFollower(store, plans, bar)
        unfinished: list[RunPlan] = []
        if not train and not is_finished(store, source):
            raise StudyNotFinishedError(f"nothing to report: FULL's source run {source.run_id} has not finished")
        try:
            for i, plan in enumerate(plans):
                if plan.arm.pool != "full" and plan.arm.pool not in state.versions:
                    _publish_curated(cfg, svc, source, state, echo)
                if plan.arm.budget == "epochs":  # FULL's epochs over its own pool: known once the pool is
                    size = int(state.manifests[plan.arm.pool]["counts"]["selected"]) if plan.arm.pool != "full" else 0
                    plans[i] = plan = epochs_budget(plan, cfg.epochs, size or inputs.pool_size, batch)
                    follower.total = sum(p.steps for p in plans)
                if not train and not is_finished(store, plan):
                    unfinished.append(plan)
                    continue
                follower.start(plan)
                final_dir = out / "models" / "runs" / plan.run_id
                if is_finished(store, plan):
                    state.reused.append(plan.run_id)
                    follower.finish(plan, trained=False)
                    if cfg.final_eval and not has_final_eval(store, plan.run_id):
                        rollout.ray()
                        evaluate_final(cfg.final_eval, final_dir, store, plan.run_id, base.trainer.use_gpu)
                    continue
                resume = latest_checkpoint(store, plan.run_id)
                if resume is None:  # nothing to continue from: start over, in the store and in Ray Train's storage
                    clear_run(store, plan.run_id)
                    shutil.rmtree(Path(base.trainer.ray_storage_path or "") / plan.run_id, ignore_errors=True)
                prompts = prompts_for(plan.arm, str(inputs.pool), state.versions)
                size = (
                    inputs.pool_size
                    if plan.arm.pool == "full"
                    else state.manifests[plan.arm.pool]["counts"]["selected"]
                )
                run_cfg = run_config(
                    rollout.config(), plan, prompts, int(size), svc.datasets_url, cfg.lim.early_epochs
                )
                if cfg.final_eval:  # keep the final model for the benchmark evaluation
                    run_cfg.run.output_dir = str(final_dir)
                t = time.monotonic()
                run_with_ray(run_cfg, resume)
                state.seconds[plan.run_id] = time.monotonic() - t
                follower.finish(plan, trained=True)
                if cfg.final_eval:
                    echo(f"{plan.label}: final evaluation on {', '.join(cfg.final_eval.benchmarks)}")
                    evaluate_final(cfg.final_eval, final_dir, store, plan.run_id, base.trainer.use_gpu)
                echo(f"{plan.label}: {plan.steps} steps in {state.seconds[plan.run_id]:.0f} s")
        finally:
            follower.close()
            rollout.close()
        if "lim" not in state.versions:  # no curated arm configured: still report the LIM selection
            _publish_curated(cfg, svc, source, state, echo)
        state.api_downloads = svc.data_downloads()
    if unfinished:
        echo(f"reporting {len(plans) - len(unfinished)} of {len(plans)} runs; not finished: "
             + ", ".join(p.run_id for p in unfinished))  # fmt: skip
    return inputs, [p for p in plans if p not in unfinished], state


def _publish_curated(cfg: ExperimentConfig, svc, source: RunPlan, state: StudyState, echo) -> None:
    """LIM: the scorer's version for the finished source run; RAND: the same size, through the publish API."""
    lim_name = lim_dataset(cfg)

    def final(m: dict[str, Any]) -> bool:
        # The scorer publishes interim versions as epochs complete, and the final one (`final: true`, LIM over
        # every epoch) once the learner has marked the run finished. An interim version over all of FULL's
        # epochs is the same selection: accepted too, for source runs from before the finished marker.
        return m.get("run") == source.run_id and (bool(m.get("final")) or m.get("epochs_used") == cfg.epochs)

    lim = svc.wait_for_version(lim_name, final, cfg.services.publish_timeout_s)
    n = lim["counts"]["selected"]
    echo(f"LIM (scorer, threshold {cfg.lim.threshold}): {lim_name} v{lim['version']}, {n} prompts")
    state.versions["lim"] = f"dataset://{lim_name}@{lim['version']}"
    state.manifests["lim"] = lim
    for name, sub in cfg.subsets.items():
        body: dict[str, Any] = {"run": source.run_id, **sub.publish_body()}
        body["max_epochs"] = cfg.epochs
        if sub.size_of is not None:
            body["top_k"] = max(1, int(state.manifests[sub.size_of]["counts"]["selected"]))
        else:
            body.update(
                {k: getattr(sub, k) for k in ("threshold", "top_k", "fraction") if getattr(sub, k) is not None}
            )
        m = svc.publish(subset_dataset(cfg, name), body)
        size = m["counts"]["selected"]
        echo(f"{name} (dataset API publish, {sub.strategy}): {m['name']} v{m['version']}, {size} prompts")
        state.versions[name] = f"dataset://{m['name']}@{m['version']}"
        state.manifests[name] = m
