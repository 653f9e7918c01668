"""Arrow schemas and the object layout of a run in the store: every key of a run is spelled here, once.
Version: EVENTS_SCHEMA_VERSION.

Layout under a store root:
    runs/{run_id}/run.json                                   run metadata (limr.events.run)
    runs/{run_id}/prompts.parquet                            prompt_id, prompt, answer, source
    runs/{run_id}/events/{step:010d}-{part:04d}.parquet      one row per rollout sample
    runs/{run_id}/events/{step:010d}-{part:04d}-a{N:04d}.parquet   the same, written by resumed attempt N
    runs/{run_id}/attempts.json                              resumes: attempt N restarted at step S
    runs/{run_id}/_FINISHED                                  the run-finished marker, its last object
    runs/{run_id}/metrics/{done_steps:010d}.json             the learner's metrics per step (limr.events.metrics)
    runs/{run_id}/checkpoints/{done_steps:010d}/...          a learner checkpoint (limr.learner.checkpoint)
    runs/{run_id}/checkpoints/latest.json                    the newest complete checkpoint's pointer
    runs/{run_id}/weights/{version:010d}/...                 an exported weight version (limr.learner.generator)
    runs/{run_id}/curation.json                              the run's early-LIM switch (limr.learner.early_switch)
    runs/{run_id}/final_eval.json                            the final model's benchmark summary (limr.experiment)

Readers rely only on REQUIRED_EVENT_COLUMNS; writers may add nullable columns (`response`, `event_time`,...).
"""

from __future__ import annotations

import re

import pyarrow as pa

EVENTS_SCHEMA_VERSION = 1

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# `-a{attempt:04d}`: events of a resumed attempt (limr.events.attempts); a run's first attempt has none.
EVENT_KEY_RE = re.compile(
    r"^runs/(?P<run>[^/]+)/events/(?P<step>\d{10})-(?P<part>\d{4})(?:-a(?P<attempt>\d{4}))?\.parquet$"
)

EVENT_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("epoch", pa.int32(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("sample", pa.int32(), nullable=False),
        pa.field("reward", pa.float32(), nullable=False),
        pa.field("correct", pa.bool_(), nullable=False),
        pa.field("response_tokens", pa.int32(), nullable=False),
    ],
    metadata={"limr.events.schema_version": str(EVENTS_SCHEMA_VERSION)},
)
REQUIRED_EVENT_COLUMNS: tuple[str, ...] = tuple(EVENT_SCHEMA.names)

OPTIONAL_EVENT_FIELDS = {
    "response": pa.string(),
    "event_time": pa.timestamp("ms", tz="UTC"),
    "finish_reason": pa.string(),
    "weight_version": pa.int64(),
    # Extra per-sample numbers a correctness rule may name (verl's `acc`, one entry per TRL reward function).
    "scores": pa.map_(pa.string(), pa.float64()),
}

PROMPTS_SCHEMA = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("answer", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=True),
    ]
)


def check_run_id(run_id: str) -> str:
    if not RUN_ID_RE.match(run_id):
        raise ValueError(f"invalid run id {run_id!r}: use 1-128 of letters, digits, '.', '_' or '-'")
    return run_id


RUNS_PREFIX = "runs/"


def run_prefix(run_id: str) -> str:
    return f"{RUNS_PREFIX}{check_run_id(run_id)}/"


def ray_train_prefix(run_id: str) -> str:
    """Ray Train's own state of the run (trainer.ray_storage_path "store"): under the run, where the learner's
    store credentials may write, and invisible to readers of runs (they look for run.json, events/, ...)."""
    return f"{run_prefix(run_id)}ray-train/"


def run_json_key(run_id: str) -> str:
    return f"{run_prefix(run_id)}run.json"


def prompts_key(run_id: str) -> str:
    return f"{run_prefix(run_id)}prompts.parquet"


def finished_key(run_id: str) -> str:
    """The run-finished marker, written last by whoever writes the run (see limr.events.run)."""
    return f"{run_prefix(run_id)}_FINISHED"


def events_prefix(run_id: str) -> str:
    return f"{run_prefix(run_id)}events/"


def metrics_prefix(run_id: str) -> str:
    """The learner's per-step metrics (`{step:010d}.json`, 1-based completed steps): training curves."""
    return f"{run_prefix(run_id)}metrics/"


def metrics_key(run_id: str, done_steps: int) -> str:
    """The metrics after `done_steps` completed steps."""
    return f"{metrics_prefix(run_id)}{done_steps:010d}.json"


def checkpoints_prefix(run_id: str) -> str:
    return f"{run_prefix(run_id)}checkpoints/"


def checkpoint_key(run_id: str, done_steps: int) -> str:
    """The key prefix of the checkpoint after `done_steps` completed steps (ends with '/')."""
    return f"{checkpoints_prefix(run_id)}{done_steps:010d}/"


def latest_checkpoint_key(run_id: str) -> str:
    """The pointer to the newest complete checkpoint, written after all of its objects."""
    return f"{checkpoints_prefix(run_id)}latest.json"


def weights_prefix(run_id: str) -> str:
    """The run's exported weight versions (for rollout replicas that start cold)."""
    return f"{run_prefix(run_id)}weights/"


def weights_key(run_id: str, version: int) -> str:
    """The key prefix of exported weight `version` (ends with '/'): a whole HF model directory."""
    return f"{weights_prefix(run_id)}{version:010d}/"


def curation_key(run_id: str) -> str:
    """The early-LIM switch of a run (`curation.mode: early-lim`): when it left the full pool, for which subset."""
    return f"{run_prefix(run_id)}curation.json"


def heldout_prefix(run_id: str) -> str:
    """Per-problem held-out results of each evaluation (limr.events.heldout)."""
    return f"{run_prefix(run_id)}heldout/"


def heldout_key(run_id: str, done_steps: int) -> str:
    return f"{heldout_prefix(run_id)}{done_steps:010d}.json"


def final_eval_key(run_id: str) -> str:
    """The final model's benchmark summary (`limr experiment`)."""
    return f"{run_prefix(run_id)}final_eval.json"


def event_key(run_id: str, step: int, part: int, attempt: int = 0) -> str:
    """`attempt` 0 (a run's first attempt) keeps the plain layout; a resumed attempt N >= 1 adds `-aNNNN`, so
    its events never share a key with the ones a crashed attempt wrote (limr.events.attempts)."""
    if not (0 <= step < 10**10 and 0 <= part < 10**4 and 0 <= attempt < 10**4):
        raise ValueError(f"step {step} / part {part} / attempt {attempt} out of range for the event key layout")
    suffix = f"-a{attempt:04d}" if attempt else ""
    return f"{events_prefix(run_id)}{step:010d}-{part:04d}{suffix}.parquet"


def attempts_key(run_id: str) -> str:
    """The run's resume record (limr.events.attempts): which attempt resumed from which step."""
    return f"{run_prefix(run_id)}attempts.json"
