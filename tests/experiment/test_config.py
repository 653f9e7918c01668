"""Experiment config, arms and the skill-mix pool: validation, run plans, disjoint held-out sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from limr.experiment.arms import plan_runs, prompts_for, run_id
from limr.experiment.config import ExperimentConfigError, load_experiment
from limr.tasks.skills import SkillMix, SkillMixError, make_mix, skill_family

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "experiment-tiny.yaml"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(text)
    return p


BASE = """
name: t
learner: configs/tiny-cpu.yaml
pool: {mix: {size: 20, held_out: 10, shares: {add-1x1: 0.5, add-1x2: 0.5}}}
"""


def test_repo_config_loads_and_quick_shrinks_it():
    cfg = load_experiment(TINY)
    assert [a.name for a in cfg.arms] == ["full", "lim", "rand", "dynamic", "early-lim"]
    assert len(cfg.seeds) >= 3 and cfg.lim.threshold == 0.6
    quick = load_experiment(TINY, quick=True)
    assert quick.seeds == [0] and quick.pool.mix.size < cfg.pool.mix.size
    assert [a.name for a in quick.arms] == ["full", "lim", "rand", "dynamic"]


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("experiment-*.yaml")), ids=lambda p: p.name)
def test_every_repo_experiment_config_loads_quick_too(path):
    assert load_experiment(path).arms and load_experiment(path, quick=True).arms


def test_long_config_is_the_studys_full_arm_for_twice_the_epochs():
    """Its runs stand in for the study's FULL runs in docs/lim.md: only the length (and what is run) may differ."""
    tiny, long = load_experiment(TINY), load_experiment(REPO / "configs" / "experiment-tiny-long.yaml")
    assert long.epochs == 2 * tiny.epochs and [a.name for a in long.arms] == ["full"]
    same = {"name", "epochs", "eval_every", "arms", "subsets", "lim", "seeds", "quick"}
    assert long.model_dump(exclude=same) == tiny.model_dump(exclude=same)
    assert long.lim.threshold == tiny.lim.threshold
    # the 16-sample variant: twice the samples per prompt, half the prompts per step, the rest the same
    n16 = load_experiment(REPO / "configs" / "experiment-tiny-long-n16.yaml")
    samples = {k: (long.learner_overrides[k], n16.learner_overrides[k]) for k in long.learner_overrides}
    assert samples.pop("rollout.samples_per_prompt") == (8, 16) and samples.pop("batch.rollout_batch_size") == (20, 10)
    assert all(a == b for a, b in samples.values()) and n16.learner_overrides.keys() == long.learner_overrides.keys()
    assert n16.model_dump(exclude=same | {"learner_overrides"}) == long.model_dump(
        exclude=same | {"learner_overrides"}
    )


def test_plan_runs_source_seed_first_then_seed_major(tmp_path):
    cfg = load_experiment(
        write(
            tmp_path,
            BASE + "seeds: [3, 4]\nlim: {source_seed: 4}\narms: [{name: lim, pool: lim}, {name: full, pool: full}]\n",
        )
    )
    plans = plan_runs(cfg, 12)
    assert [p.run_id for p in plans] == ["t-full-s4", "t-lim-s3", "t-full-s3", "t-lim-s4"]
    three = load_experiment(
        write(
            tmp_path,
            BASE
            + "seeds: [0, 1, 2]\narms: [{name: full, pool: full}, {name: lim, pool: lim}, "
            + "{name: rand, pool: rand, seeds: [1]}]\n",
        )
    )
    # seed-major: a study stopped part-way has whole seeds to pair arms on
    assert [p.run_id for p in plan_runs(three, 12)] == [
        "t-full-s0", "t-lim-s0", "t-full-s1", "t-lim-s1", "t-rand-s1", "t-full-s2", "t-lim-s2"
    ]  # fmt: skip
    assert all(p.steps == 12 for p in plans)
    assert run_id(cfg, cfg.arms[0], 3) == "t-lim-s3"
    assert prompts_for(cfg.arms[0], "/pool.jsonl", {"lim": "dataset://t-lim@2"}) == "dataset://t-lim@2"
    assert prompts_for(cfg.arms[1], "/pool.jsonl", {}) == "/pool.jsonl"


@pytest.mark.parametrize(
    "extra, message",
    [
        ("arms: [{name: lim, pool: lim}]\n", "one arm must train on the full pool"),
        ("arms: [{name: full, pool: full}, {name: full, pool: lim}]\n", "unique"),
        ("arms: [{name: full, pool: full}]\nlim: {source_seed: 9}\n", "source_seed 9"),
        ("arms: [{name: full, pool: everything}]\n", "reads pool 'everything'"),
        ("subsets: {r: {strategy: rand, size_of: nope}}\narms: [{name: full, pool: full}]\n", "size_of"),
        ("subsets: {r: {strategy: rand, top_k: 3, fraction: 0.5}}\narms: [{name: full, pool: full}]\n", "exactly one"),
        ("subsets: {lim: {strategy: rand, top_k: 3}}\narms: [{name: full, pool: full}]\n", "invalid name"),
    ],
)
def test_bad_configs_name_the_field(tmp_path, extra, message):
    with pytest.raises(ExperimentConfigError, match=message):
        load_experiment(write(tmp_path, BASE + extra))


def test_mix_counts_and_disjoint_held_out():
    mix = SkillMix(size=40, held_out=30, shares={"add-1x1": 0.45, "add-1x2": 0.55}, held_out_shares={"add-1x2": 1})
    assert mix.counts(40) == {"add-1x1": 18, "add-1x2": 22}
    assert mix.counts(30, held_out=True) == {"add-1x2": 30}
    exclude = {"What is 1 + 10?", "What is 2 + 20?"}
    pool, held = make_mix(mix, held_out_exclude=exclude)
    assert len(pool) == 40 and len(held) == 30
    assert not {p.prompt for p in pool} & {p.prompt for p in held}
    assert not exclude & {p.prompt for p in held}
    assert all(p.source.endswith("add-1x2") for p in held)
    assert make_mix(mix, held_out_exclude=exclude) == (pool, held)  # seeded


def test_mix_rejects_unknown_skills_and_impossible_sizes():
    with pytest.raises(ValueError, match="unknown skill"):
        SkillMix(shares={"add-9x9": 1.0})
    # only 100 distinct one-digit sums: the error names the field and the count, before drawing anything
    with pytest.raises(SkillMixError, match=r"field 'pool.mix.size': asks for 150 'add-1x1' problems, but only 100"):
        make_mix(SkillMix(size=150, held_out=0, shares={"add-1x1": 1.0}))
    with pytest.raises(SkillMixError, match=r"pool.mix.size': asks for 60 .* only 40 .* 60 held-out problems"):
        make_mix(SkillMix(size=60, held_out=60, shares={"add-1x1": 1.0}))
    with pytest.raises(SkillMixError, match=r"pool.mix.held_out': asks for 99 .* only 98 .* SFT"):
        make_mix(SkillMix(size=1, held_out=99, shares={"add-1x1": 1.0}), {"What is 1 + 1?", "What is 2 + 2?"})
    assert len(skill_family("add-1x2")) == 900 and len(skill_family("add3-1")) == 1000
    assert "What is 0 + 10?" in skill_family("add-1x2") and "What is 0 + 9?" not in skill_family("add-1x2")


def test_study_held_out_beyond_the_family_is_one_line_naming_the_field(tmp_path):
    """The study's 388 unseen one-digit + two-digit sums are all there are: 389 fails before any training."""
    from typer.testing import CliRunner

    from limr.cli.main import app

    text = TINY.read_text().replace("held_out: 388", "held_out: 389").replace("held_out: 200", "held_out: 389")
    cfg = write(tmp_path, text.replace("learner: configs/tiny-cpu.yaml", f"learner: {REPO}/configs/tiny-cpu.yaml"))
    args = ["experiment", "--config", str(cfg), "--out", str(tmp_path / "out"), "--store", str(tmp_path / "s")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    lines = [x for x in res.output.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in res.output
    assert "field 'pool.mix.held_out': asks for 389 'add-1x2' problems, but only 388" in lines[0], res.output
    assert not (tmp_path / "out" / "models").exists()  # no warm start was built


def test_subsets_and_comparisons(tmp_path):
    text = BASE + (
        "subsets: {rand: {strategy: rand, size_of: lim}, top: {strategy: lim, fraction: 0.3},"
        " rtop: {strategy: rand, size_of: top}}\n"
        "arms: [{name: full, pool: full}, {name: top, pool: top}, {name: rtop, pool: rtop}]\n"
    )
    cfg = load_experiment(write(tmp_path, text))
    assert cfg.comparisons() == [("lim", "rand"), ("top", "rtop")]
    assert list(load_experiment(write(tmp_path, BASE + "arms: [{name: full, pool: full}]\n")).subsets) == ["rand"]


def test_early_lim_arm_needs_the_full_pool_and_fewer_early_epochs_than_epochs(tmp_path):
    from limr.experiment.arms import early_runs

    cfg = load_experiment(
        write(
            tmp_path,
            BASE + "epochs: 4\nlim: {early_epochs: 2}\narms: [{name: full, pool: full},"
            " {name: early, pool: full, curation: early-lim}]\n",
        )  # fmt: skip
    )
    assert early_runs(cfg) == ["t-early-s0", "t-early-s1", "t-early-s2"]
    for bad in ("epochs: 2\nlim: {early_epochs: 2}\n", "epochs: 4\nlim: {early_epochs: 1}\n"):
        pool = "lim" if "early_epochs: 1" in bad else "full"
        text = BASE + bad + f"arms: [{{name: full, pool: full}}, {{name: early, pool: {pool}, curation: early-lim}}]\n"
        with pytest.raises(ExperimentConfigError, match="early-lim\\) needs pool full"):
            load_experiment(write(tmp_path, text))


def test_early_lim_run_config_switches_the_learner_to_early_lim():
    from limr.experiment.arms import RunPlan
    from limr.experiment.config import Arm
    from limr.experiment.runner import run_config
    from limr.learner.config import LearnerConfig

    base = LearnerConfig.model_validate({"model": {"actor": "m"}, "run": {"epochs": 5}})
    arm = Arm(name="early-lim", pool="full", curation="early-lim")
    run = run_config(base, RunPlan(arm, 0, "t-early-lim-s0", 40), "/pool.jsonl", 128, "http://api", 2)
    c = run.curation
    assert (c.mode, c.early_epochs, c.early_dataset, c.dynamic_sampling) == ("early-lim", 2, "{run}-early-lim", False)
    plain = run_config(base, RunPlan(Arm(name="full", pool="full"), 0, "t-full-s0", 40), "/p", 128, "http://api")
    assert plain.curation.mode == "full"


def test_study_budget_is_epochs_over_the_pool_whatever_the_base_config_caps(tmp_path):
    """configs/tiny-cpu.yaml caps a run at 48 steps; the study's budget (FULL: `epochs` passes) must not be cut."""
    from limr.experiment.inputs import StudyInputs
    from limr.experiment.runner import base_learner

    extra = "epochs: 5\nlearner_overrides: {batch.rollout_batch_size: 4}\narms: [{name: full, pool: full}]\n"
    cfg = load_experiment(write(tmp_path, BASE + extra))
    inputs = StudyInputs(tmp_path / "m", tmp_path / "p", tmp_path / "h", 200, {})
    learner = base_learner(cfg, inputs, f"file://{tmp_path}/store", tmp_path / "out")
    assert learner.derive(200).total_steps == 5 * 50


def test_warm_start_directory_changes_with_its_settings():
    from limr.experiment.config import WarmStart

    assert WarmStart().slug() != WarmStart(sft_steps=1600).slug()
    assert WarmStart(sft_column_fraction=0.2).slug() != WarmStart(sft_column_fraction=0.3).slug()


def test_field_study_config_arms_seeds_and_held_out():
    """configs/experiment-tiny-field.yaml: the study's pool and warm start, 5 seeds for FULL/LIM/RAND and 3 for
    every other arm, every selector at LIM's size, and all 388 unseen held-out problems."""
    field, tiny = load_experiment(REPO / "configs" / "experiment-tiny-field.yaml"), load_experiment(TINY)
    assert field.warm_start == tiny.warm_start and field.pool.mix.shares == tiny.pool.mix.shares
    assert field.pool.mix.size == tiny.pool.mix.size and field.pool.mix.held_out == 388
    assert field.learner_overrides["data.eval_limit"] == 388
    seeds = {a.name: field.seeds_of(a) for a in field.arms}
    assert all(len(seeds[a]) == 5 for a in ("full", "lim", "rand")) and min(map(len, seeds.values())) >= 3
    assert {s.strategy for s in field.subsets.values()} == {"rand", "variance", "learnability", "pass-band"}
    assert all(s.size_of == "lim" for s in field.subsets.values())
    assert {a.name: a.budget for a in field.arms}["lim-epochs"] == "epochs"
    assert {a.curation for a in field.arms} == {"none", "dynamic", "greso"}
    assert field.comparisons() == [("lim", "rand")]


def test_epochs_budget_and_greso_run_config():
    from limr.experiment.arms import RunPlan
    from limr.experiment.config import Arm
    from limr.experiment.runner import epochs_budget, run_config
    from limr.learner.config import LearnerConfig

    arm = Arm(name="lim-epochs", pool="lim", budget="epochs")
    plan = epochs_budget(RunPlan(arm, 0, "t-lim-epochs-s0", 50), epochs=5, pool_size=73, batch=20)
    assert plan.steps == 20  # 5 passes x ceil(73 / 20) steps
    base = LearnerConfig.model_validate(
        {"model": {"actor": "m"}, "run": {"epochs": 5}, "batch": {"rollout_batch_size": 20, "train_batch_size": 20}}
    )
    run = run_config(base, plan, "dataset://t-lim@1", 73, "http://api")
    assert (run.run.max_steps, run.run.epochs) == (20, 5)
    greso = run_config(base, RunPlan(Arm(name="g", pool="full", curation="greso"), 0, "t-g-s0", 50), "/p", 200, "u")
    assert (greso.curation.mode, greso.curation.dynamic_sampling) == ("greso", True)
