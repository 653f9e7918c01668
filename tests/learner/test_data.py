"""The per-epoch prompt order: every prompt once per epoch, seeded, and a pure function of the step."""

from __future__ import annotations

from limr.learner.data import PromptPlan, shard


def test_each_epoch_covers_the_pool_once():
    ids = [f"p{i}" for i in range(10)]
    plan = PromptPlan(ids, rollout_batch_size=4, seed=1)
    assert plan.steps_per_epoch == 3
    for epoch in range(2):
        steps = [plan.for_step(epoch * 3 + i) for i in range(3)]
        assert all(s.epoch == epoch for s in steps)
        seen = [i for s in steps for i in s.indices]
        assert sorted(seen) == list(range(10))
        assert [len(s.indices) for s in steps] == [4, 4, 2]
    assert plan.for_step(0).indices != plan.for_step(3).indices  # reshuffled each epoch


def test_order_is_reproducible_and_seeded():
    ids = [f"p{i}" for i in range(50)]
    a, b = PromptPlan(ids, 8, seed=7), PromptPlan(ids, 8, seed=7)
    assert [a.for_step(s).indices for s in range(14)] == [b.for_step(s).indices for s in reversed(range(14))][::-1]
    assert PromptPlan(ids, 8, seed=8).for_step(0).indices != a.for_step(0).indices
    assert a.fingerprint() == b.fingerprint() != PromptPlan(ids[:-1], 8, seed=7).fingerprint()


def test_shard_is_contiguous_and_balanced():
    idx = list(range(7))
    parts = [shard(idx, r, 3) for r in range(3)]
    assert sum(parts, []) == idx
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
