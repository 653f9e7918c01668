"""Which prompts each curated pool keeps and drops, by skill, and how their accuracy moves: the data behind "why
does one subset transfer worse than another of the same size".

For every arm with a curated pool: its prompts by skill; the FULL source run's accuracy of the kept and of the
dropped prompts at its first and last epoch (what the selector saw); and, in the arm's own first run, each
skill's training accuracy at its first and last pass over the pool (how the subset itself was learned: a pool
the model comes to solve always gives groups of 8 right answers, which teach GRPO nothing). `lim_vs_rand` splits
the pool four ways (LIM only, RAND only, both, neither) with the same figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from limr.scoring import ScoreResult


def _mean(x: np.ndarray) -> float | None:
    return round(float(x.mean()), 4) if x.size else None


def _rows(ids: set[str], prompt_ids: list[str]) -> np.ndarray:
    return np.array([pid in ids for pid in prompt_ids], bool)


def _by_skill(mask: np.ndarray, skills: np.ndarray, traj: np.ndarray) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for s in sorted(set(skills.tolist())):
        m = mask & (skills == s)
        out[s] = {"prompts": int(m.sum()), "first": _mean(traj[m, 0]), "last": _mean(traj[m, -1])}
    return out


def own_run_movement(result: ScoreResult, groups: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per skill, the mean training accuracy of an arm's own run at its first and last epoch over its pool."""
    if result.trajectories is None or not len(result):
        return {}
    skills = np.array([groups.get(pid, "pool") for pid in result.prompt_ids])
    return _by_skill(np.ones(len(skills), bool), skills, result.trajectories)


def composition(
    source: ScoreResult, pools: dict[str, set[str]], groups: dict[str, str], own: dict[str, ScoreResult]
) -> dict[str, Any]:
    """`source`: the FULL source run's scores; `pools[arm]`: the prompt ids of each curated arm's pool; `own[arm]`:
    the scores of the arm's own first run (its trajectories over its passes)."""
    if source.trajectories is None:
        return {}
    traj = source.trajectories
    skills = np.array([groups.get(pid, "pool") for pid in source.prompt_ids])
    out: dict[str, Any] = {"arms": {}}
    for arm, ids in pools.items():
        kept = _rows(ids, source.prompt_ids)
        out["arms"][arm] = {
            "kept": _by_skill(kept, skills, traj),
            "dropped": _by_skill(~kept, skills, traj),
            "own_run": own_run_movement(own[arm], groups) if arm in own else {},
        }
    if "lim" in pools and "rand" in pools:
        lim, rand = _rows(pools["lim"], source.prompt_ids), _rows(pools["rand"], source.prompt_ids)
        out["lim_vs_rand"] = {
            "lim only": _by_skill(lim & ~rand, skills, traj),
            "rand only": _by_skill(rand & ~lim, skills, traj),
            "both": _by_skill(lim & rand, skills, traj),
            "neither": _by_skill(~lim & ~rand, skills, traj),
        }
    return out


def composition_markdown(comp: dict[str, Any]) -> str:
    """One row per curated arm and skill: kept / dropped, FULL's first -> last epoch accuracy, the arm's own run."""

    def move(d: dict[str, Any] | None) -> str:
        if not d or d["first"] is None:
            return "-"
        return f"{d['first']:.2f} -> {d['last']:.2f}"

    lines = [
        "| arm | skill | kept | FULL run: kept, first -> last epoch | dropped | FULL run: dropped | own run |",
        "|---|---|---|---|---|---|---|",
    ]
    for arm, d in comp.get("arms", {}).items():
        for skill, k in d["kept"].items():
            dr = d["dropped"][skill]
            own = d["own_run"].get(skill)
            lines.append(
                f"| {arm} | {skill} | {k['prompts']} | {move(k)} | {dr['prompts']} | {move(dr)} | {move(own)} |"
            )
    if "lim_vs_rand" in comp:
        lines += ["", "| split | skill | prompts | FULL run, first -> last epoch |", "|---|---|---|---|"]
        for split, by in comp["lim_vs_rand"].items():
            lines += [f"| {split} | {s} | {d['prompts']} | {move(d)} |" for s, d in by.items()]
    return "\n".join(lines)
