"""GRESO's skip rule and exploration-rate control, against values worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from limr.algo.greso import GresoSettings, GresoState, StepOutcome


def test_streaks_and_skip_probability() -> None:
    g = GresoState()
    assert (g.p_easy, g.p_hard) == (0.5, 0.5) and g.skip_probability(3) == 0.0  # never seen: always rolled out
    right, wrong, mixed = [1] * 4, [0] * 4, [1, 0, 0, 1]
    out = g.observe([1, 2, 3], np.array([right, wrong, mixed]))
    assert (out.groups, out.easy, out.hard) == (3, 1, 1)
    assert g.skip_probability(1) == pytest.approx(0.5) and g.skip_probability(2) == pytest.approx(0.5)
    assert g.skip_probability(3) == 0.0
    g.observe([1, 2], np.array([right, wrong]))
    g.observe([1], np.array([right]))
    assert g.skip_probability(1) == pytest.approx(1 - 0.5**3) and g.skip_probability(2) == pytest.approx(0.75)
    g.observe([1] * 1, np.array([mixed]))  # one informative group resets the streak
    assert g.skip_probability(1) == 0.0
    for _ in range(10):  # a long streak still leaves the 1% floor
        g.observe([2], np.array([wrong]))
    assert g.skip_probability(2) == pytest.approx(0.99)
    g.observe([2], np.array([right]))  # all wrong, then all right: an easy streak of 1
    assert g.hard_streak[2] == 0 and g.skip_probability(2) == pytest.approx(0.5)


def test_adapt_moves_toward_the_targets_within_bounds() -> None:
    g = GresoState(GresoSettings(target_zero_variance=0.3))  # targets: easy 0.1, hard 0.2
    g.adapt(StepOutcome(groups=10, easy=1, hard=1))  # easy at its target (>=): skip more; hard below: explore more
    assert (g.p_easy, g.p_hard) == pytest.approx((0.49, 0.51))
    for _ in range(100):
        g.adapt(StepOutcome(groups=10, easy=5, hard=0))
    assert (g.p_easy, g.p_hard) == pytest.approx((0.05, 0.95))
    g.adapt(StepOutcome(groups=0, easy=0, hard=0))  # nothing rolled out: nothing learned
    assert (g.p_easy, g.p_hard) == pytest.approx((0.05, 0.95))


def test_filter_is_seeded_never_skips_everything_and_round_trips() -> None:
    g = GresoState()
    for _ in range(5):
        g.observe(list(range(100)), np.ones((100, 4)))  # every prompt solved 5 times: skip 1 - 0.5^5 = 0.97
    kept, skipped = g.filter(list(range(100)), np.random.default_rng(0))
    assert sorted(kept + skipped) == list(range(100)) and 0 < len(kept) < 10
    assert g.filter(list(range(100)), np.random.default_rng(0)) == (kept, skipped)
    g.easy_streak = {0: 50}
    assert g.filter([0], np.random.default_rng(1)) == ([0], [])  # the one prompt would be skipped: keep it
    back = GresoState.from_dict(g.to_dict(), g.settings)
    assert back.to_dict() == g.to_dict() and back.skip_probability(0) == g.skip_probability(0)
