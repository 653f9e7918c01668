"""Which prompts a curated pool keeps and drops, by skill, and how their accuracy moves."""

from __future__ import annotations

import numpy as np

from limr.experiment.composition import composition, composition_markdown
from limr.scoring import ScoreResult


def _result(ids: list[str], traj: list[list[float]]) -> ScoreResult:
    t = np.array(traj)
    return ScoreResult(ids, np.zeros(len(ids)), t, t.mean(axis=0), epochs=t.shape[1])


def test_kept_dropped_and_lim_vs_rand_by_skill() -> None:
    ids = ["a", "b", "c", "d"]
    groups = {"a": "easy", "b": "easy", "c": "mid", "d": "mid"}
    source = _result(ids, [[1.0, 1.0], [0.5, 0.75], [0.0, 0.5], [0.0, 0.0]])
    own = {"lim": _result(["b", "c"], [[0.5, 1.0], [0.25, 0.75]])}
    comp = composition(source, {"lim": {"b", "c"}, "rand": {"a", "c"}}, groups, own)
    lim = comp["arms"]["lim"]
    assert lim["kept"] == {
        "easy": {"prompts": 1, "first": 0.5, "last": 0.75},
        "mid": {"prompts": 1, "first": 0.0, "last": 0.5},
    }
    assert lim["dropped"]["mid"] == {"prompts": 1, "first": 0.0, "last": 0.0}
    assert lim["own_run"]["easy"] == {"prompts": 1, "first": 0.5, "last": 1.0}
    assert comp["arms"]["rand"]["own_run"] == {}
    split = comp["lim_vs_rand"]
    assert split["both"]["mid"]["prompts"] == 1 and split["lim only"]["easy"]["prompts"] == 1
    assert split["rand only"]["easy"] == {"prompts": 1, "first": 1.0, "last": 1.0}
    assert (
        split["neither"]["mid"] == {"prompts": 1, "first": 0.0, "last": 0.0}
        and split["neither"]["easy"]["first"] is None
    )
    text = composition_markdown(comp)
    assert "| lim | easy | 1 | 0.50 -> 0.75 | 1 | 1.00 -> 1.00 | 0.50 -> 1.00 |" in text
    assert "| neither | easy | 0 | - |" in text
