"""The learner records its run through `EventWriter` (the class any trainer uses): events of each rank's samples,
run.json/prompts.parquet once (rank 0, fresh runs), the finish marker last; no training needed."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from limr.events.io import list_event_keys, read_events_object, read_prompts
from limr.events.run import read_run_meta, run_finished
from limr.events.writer import EventWriter
from limr.learner.batch import Rollout
from limr.learner.record import open_run, write_run_finish, write_step_events
from limr.scoring import score_run
from limr.store import open_store


class _Ctx:
    def __init__(self, rank: int) -> None:
        self.rank, self.is_main, self.world_size = rank, rank == 0, 2

    def barrier(self) -> None:
        pass

    def broadcast_object(self, value):  # noqa: ANN001, ANN201
        return value


def _setup(store):
    writer = EventWriter(
        store, "learn", ["What is 1+1?", "What is 2+2?"], steps_per_epoch=1, source="learner", exist_ok=True, epochs=2
    )
    return SimpleNamespace(
        run_id="learn",
        store=store,
        texts=SimpleNamespace(ids=[r.prompt_id for r in writer.records]),
        events=writer,
        derived=SimpleNamespace(total_steps=2),
        plan=SimpleNamespace(for_step=lambda s: SimpleNamespace(epoch=s)),
    )


def _rollouts(n: int) -> list[Rollout]:
    return [Rollout(i % 2, i // 2, [1], [2] * (i + 1), None, f"r{i}", "stop", 3) for i in range(n)]


def test_learner_record_path_writes_through_the_event_writer(tmp_path) -> None:
    store = open_store(str(tmp_path))
    rank0, rank1 = _setup(store), _setup(store)
    open_run(rank0, _Ctx(0), 0, resumed=False)
    open_run(rank1, _Ctx(1), 0, resumed=False)
    assert read_run_meta(store, "learn").source == "learner" and len(read_prompts(store, "learn")) == 2
    for step in range(2):
        for setup, rank in ((rank0, 0), (rank1, 1)):
            rolls = _rollouts(4)
            write_step_events(
                setup, step, step, rank, [0, 1], rolls, torch.tensor([1.0, 0.0, 1.0, 0.5]), [True, False, True, False]
            )
    keys = list(list_event_keys(store, "learn"))
    assert [k.rsplit("/", 1)[1] for k in keys] == [
        "0000000000-0000.parquet",
        "0000000000-0001.parquet",
        "0000000001-0000.parquet",
        "0000000001-0001.parquet",
    ]
    t = read_events_object(store, keys[1], ("sample", "correct", "response_tokens", "weight_version", "event_time"))
    assert t.column("correct").to_pylist() == [True, False, True, False]  # the grader's verdict, as given
    assert (
        t.column("response_tokens").to_pylist() == [1, 2, 3, 4] and t.column("weight_version").to_pylist() == [3] * 4
    )
    assert run_finished(store, "learn") is None
    write_run_finish(rank0, _Ctx(0))
    assert run_finished(store, "learn").epochs == 2
    assert len(score_run(store, "learn").prompt_ids) == 2
    # A resumed rank 0 does not rewrite run.json / prompts.parquet; its events carry the attempt in their keys.
    before = store.get("runs/learn/run.json")
    resumed = _setup(store)
    open_run(resumed, _Ctx(0), 1, resumed=True)
    assert store.get("runs/learn/run.json") == before and run_finished(store, "learn") is None
    key = write_step_events(resumed, 1, 1, 0, [0, 1], _rollouts(4), torch.zeros(4), [False] * 4)
    assert key is not None and key.endswith("0000000001-0000-a0001.parquet")
