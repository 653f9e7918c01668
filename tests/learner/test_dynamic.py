"""Dynamic sampling: informative groups kept, refills drawn from the rest of the pool, every generation counted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from limr.learner.batch import Rollout
from limr.learner.config import LearnerConfig
from limr.learner.dynamic import Groups, dynamic_sample, informative, refill

N = 4


def scripted_run(solved: dict[int, list[bool]], calls: list[list[int]]):
    """A generator whose per-prompt outcomes are fixed; each sample is 3 tokens long."""

    def run(indices: list[int]) -> Groups:
        calls.append(list(indices))
        rollouts, correct = [], []
        for j, idx in enumerate(indices):
            for k in range(N):
                rollouts.append(Rollout(j, k, [1], [5, 6, 7], None, f"p{idx}", "stop"))
                correct.append(solved[idx][k])
        scores = torch.tensor([1.0 if c else -0.5 for c in correct])
        return Groups(list(indices), rollouts, scores, correct)

    return run


def test_informative_groups():
    v = np.array([[1, 1, 1], [0, 0, 0], [1, 0, 1]])
    assert informative(v).tolist() == [False, False, True]


def test_refill_excludes_and_is_seeded():
    a = refill(20, {0, 1, 2}, 5, [1, 2, 3])
    assert a == refill(20, {0, 1, 2}, 5, [1, 2, 3])
    assert len(a) == 5 and not {0, 1, 2} & set(a) and len(set(a)) == 5
    assert refill(4, {0, 1, 2, 3}, 3, [0]) == []


def test_keeps_informative_groups_and_refills_until_full():
    mixed, all_right, all_wrong = [True, False, True, False], [True] * N, [False] * N
    solved = {i: (mixed if i % 3 == 0 else all_right if i % 3 == 1 else all_wrong) for i in range(30)}
    calls: list[list[int]] = []
    out = dynamic_sample([0, 1, 2, 3], scripted_run(solved, calls), N, 30, "correct", 8, [7, 0, 0])
    g = out.groups
    assert len(g.indices) == 4 and all(i % 3 == 0 for i in g.indices)
    assert len(set(g.indices)) == 4  # no prompt twice in a step
    assert len(g.rollouts) == 4 * N and g.scores.shape == (4 * N,)
    # rollouts re-indexed to the kept groups, in (prompt, sample) order
    assert [r.prompt_index for r in g.rollouts] == [i for i in range(4) for _ in range(N)]
    assert [r.text for r in g.rollouts] == [f"p{i}" for i in g.indices for _ in range(N)]
    assert out.rounds == len(calls) > 1
    assert out.generated_groups == sum(len(c) for c in calls) > 4
    assert out.generated_tokens == 3 * N * out.generated_groups  # dropped groups count too
    flat = [i for c in calls for i in c]
    assert len(flat) == len(set(flat))  # refills never repeat a prompt of the step


def test_short_step_tops_up_with_dropped_groups():
    solved = {i: [True] * N for i in range(6)}  # nothing informative anywhere
    calls: list[list[int]] = []
    out = dynamic_sample([0, 1], scripted_run(solved, calls), N, 6, "correct", 3, [0])
    assert len(out.groups.indices) == 2 and len(out.groups.rollouts) == 2 * N
    assert out.rounds <= 3 and out.generated_groups == sum(len(c) for c in calls)


def test_reward_metric_keeps_groups_whose_rewards_differ():
    calls: list[list[int]] = []
    solved = {i: [False] * N for i in range(4)}
    run = scripted_run(solved, calls)

    def run_with_format_errors(indices):
        g = run(indices)
        g.scores[0] = -1.0  # first group: all wrong, one format error
        return g

    out = dynamic_sample([0, 1], run_with_format_errors, N, 4, "reward", 1, [0])
    assert out.groups.indices[0] == 0  # kept: its rewards differ although none is correct


def test_config_section():
    cfg = LearnerConfig.model_validate(
        {"model": {"actor": "m"}, "curation": {"dynamic_sampling": True, "filter_metric": "reward"}}
    )
    assert cfg.curation.dynamic_sampling and cfg.curation.max_rounds == 8
    with pytest.raises(ValueError, match="filter_metric"):
        LearnerConfig.model_validate({"model": {"actor": "m"}, "curation": {"filter_metric": "acc"}})


def test_greso_skips_zero_variance_prompts_before_rollout_and_refills_instead():
    """Prompts 0-9 were all right twice (skip probability 0.75 each); the step still trains on informative
    groups, the skipped prompts are never rolled out, and the next state carries the step's outcomes."""
    from limr.learner.dist import DistCtx
    from limr.learner.greso import Greso

    mixed, all_right = [True, False, True, False], [True] * N
    solved = {i: (all_right if i < 10 else mixed) for i in range(40)}
    greso = Greso()
    for _ in range(2):
        greso.state.observe(list(range(10)), np.ones((10, N)))
    calls: list[list[int]] = []
    out = dynamic_sample(list(range(10)), scripted_run(solved, calls), N, 40, "correct", 8, [1, 0, 0], greso.prefilter)
    rolled_out = {i for c in calls for i in c}
    assert out.skipped == 10 - len(calls[0]) > 0 and not rolled_out & (set(range(10)) - set(calls[0]))
    assert len(out.groups.indices) == 10 and all(i >= 10 for i in out.groups.indices)
    assert out.generated_groups == len([i for c in calls for i in c])
    assert [len(idx) for idx, _ in out.rolled] == [len(c) for c in calls]
    m = greso.end_step(DistCtx(), out.rolled, out.skipped)
    assert m["curation/greso_skipped"] == out.skipped
    easy = sum(1 for c in calls for i in c if i < 10)
    assert m["curation/greso_zero_variance"] == pytest.approx(easy / out.generated_groups)
    assert m["curation/greso_p_easy"] in (pytest.approx(0.49), pytest.approx(0.51))
    first_easy = [i for i in calls[0] if i < 10]
    assert all(greso.state.easy_streak[i] == 3 for i in first_easy)  # rolled out: all right a third time
    back = Greso()
    back.load(greso.to_dict())
    assert back.to_dict() == greso.to_dict()


def test_greso_mode_turns_on_with_its_settings():
    cfg = LearnerConfig.model_validate({"model": {"actor": "m"}, "curation": {"mode": "greso"}})
    assert cfg.curation.mode == "greso" and cfg.curation.greso_target_zero_variance == 0.25
