"""Ray Train failure handling: a worker process dies after step 2, the group restarts from the checkpoint."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from limr.events.io import list_event_keys, read_events_object
from limr.learner.config import load_config
from limr.store import open_store
from tests.conftest import unique_name
from tests.learner.conftest import write_config

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def _dying_loop(step: int, rank: int, marker: str):
    """The production worker function, except that `rank` exits (os._exit, as a crash would) once, right after
    it reported step `step`; `marker` records that it did. Pickled by value into the Ray Train workers."""

    def loop(config):
        import os

        import ray.train

        from limr.learner.worker import train_loop_per_worker

        real_report = ray.train.report

        def report(metrics, checkpoint=None, **kw):
            real_report(metrics, checkpoint=checkpoint, **kw)
            me = ray.train.get_context().get_world_rank()
            if int(metrics["train/step"]) == step and me == rank and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)

        ray.train.report = report
        train_loop_per_worker(config)

    return loop


def test_worker_death_restarts_from_last_checkpoint(tmp_path, ray_session, tiny_model, synthetic_pool):
    from limr.learner.launch import fit

    train, _ = synthetic_pool  # 12 prompts, 4 per step
    marker = tmp_path / "died"
    cfg_path = write_config(
        tmp_path / "f.yaml",
        tiny_model,
        train,
        trainer={"num_workers": 2, "max_failures": 1, "ray_storage_path": str(tmp_path / "ray")},
        run={"checkpoint_every": 1},
    )
    run_id = unique_name("fail")
    store_uri = str(tmp_path / "store")
    cfg = load_config(cfg_path, {"run.run_id": run_id, "run.store": store_uri, "run.max_steps": 3})
    result = fit(cfg, train_loop=_dying_loop(2, 1, str(marker)))  # rank 1 exits after completing step 2
    assert marker.exists()  # the worker really died
    assert result["train/step"] == 3
    store = open_store(store_uri)
    cols = ["step", "prompt_id", "sample", "event_time"]
    tables = [read_events_object(store, k, columns=cols) for k in list_event_keys(store, run_id)]
    t = pa.concat_tables(tables).to_pydict()
    # exactly one event per (step, prompt, sample): the restart neither lost nor repeated a step
    per_step = Counter(t["step"])
    assert per_step == {0: 8, 1: 8, 2: 8}
    assert len(set(zip(t["prompt_id"], t["sample"], strict=True))) == 24
    # step 0 was not redone after the crash: the restart resumed from a checkpoint, not from scratch
    died_at = marker.stat().st_mtime
    # (the crash may lose the report of the step-2 checkpoint that was in flight: resuming at 1 or 2 is right)
    assert all(ts.timestamp() < died_at for s, ts in zip(t["step"], t["event_time"], strict=True) if s == 0)
