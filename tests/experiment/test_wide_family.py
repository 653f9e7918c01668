"""The wider task family: a warm start with extra SFT problems of a named skill (`warm_start.sft_skills`), kept
out of the held-out set, and configs/experiment-tiny-field-wide.yaml built on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from limr.experiment.config import ExperimentConfigError, WarmStart, load_experiment
from limr.model.sft import sft_problems
from limr.tasks.skills import SkillMix, SkillMixError, make_mix, skill_family

REPO = Path(__file__).resolve().parents[2]
FIELD, WIDE = REPO / "configs" / "experiment-tiny-field.yaml", REPO / "configs" / "experiment-tiny-field-wide.yaml"


def test_default_warm_start_is_unchanged_and_extra_skills_change_its_directory():
    # the running study and the committed configs reuse their warm starts by this name: it must not move
    assert WarmStart(sft_steps=940).slug() == "sft940-n600-l1-c0.2-s0"
    assert load_experiment(FIELD).warm_start.slug() == "sft940-n600-l1-c0.2-s0"
    wide = WarmStart(sft_steps=940, sft_skills={"add-2x2": 300})
    assert wide.slug() == "sft940-n600-l1-c0.2-s0-add-2x2.300"
    assert wide.slug() != WarmStart(sft_steps=940, sft_skills={"add-2x2": 200}).slug()
    assert wide.slug() != WarmStart(sft_steps=940, sft_skills={"add-2x2": 300, "add-1x3": 10}).slug()


def test_extra_skill_problems_follow_the_level_ones_and_are_all_seen():
    base = sft_problems(600, 0, (1,))
    wide = sft_problems(600, 0, (1,), {"add-2x2": 300})
    assert wide[:600] == base  # adding a skill leaves the level problems (and their column routes) as they were
    extra = wide[600:]
    assert len(extra) == 300 and all(p.source.endswith("/add-2x2") for p in extra)
    assert len({p.prompt for p in wide}) == 900 and {p.prompt for p in extra} <= skill_family("add-2x2")
    assert sft_problems(600, 0, (1,), {"add-2x2": 300}) == wide  # seeded
    ws = WarmStart(sft_skills={"add-2x2": 300})
    assert ws.seen_problems() == {p.prompt for p in wide}


def test_held_out_excludes_the_extra_sft_problems_up_to_the_last_one():
    """7,800 unseen add-2x2 sums exist beside 300 SFT ones: all of them can be held out, one more is an error."""
    ws = WarmStart(sft_skills={"add-2x2": 300})
    seen = ws.seen_problems()
    mix = SkillMix(size=1, held_out=7800, shares={"add-1x1": 1.0}, held_out_shares={"add-2x2": 1.0})
    _, held = make_mix(mix, held_out_exclude=seen)
    assert len(held) == 7800 and not seen & {p.prompt for p in held}
    with pytest.raises(SkillMixError, match=r"pool.mix.held_out': asks for 7801 'add-2x2' problems, but only 7800"):
        make_mix(mix.model_copy(update={"held_out": 7801}), held_out_exclude=seen)


def test_prepare_inputs_keeps_sft_skill_problems_out_of_the_held_out_file(tmp_path):
    import json

    from limr.experiment.config import PoolSection
    from limr.experiment.inputs import prepare_inputs

    ws = WarmStart(model=str(tmp_path / "m"), sft_skills={"add-2x2": 300})
    mix = SkillMix(size=40, held_out=2000, shares={"add-1x1": 0.5, "add-2x2": 0.5}, held_out_shares={"add-2x2": 1})
    inputs = prepare_inputs(PoolSection(mix=mix), ws, tmp_path / "out")
    held = {json.loads(line)["prompt"] for line in inputs.held_out.read_text().splitlines()}
    assert len(held) == 2000 and not held & ws.seen_problems()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("{add-9x9: 10}", r"field 'warm_start.sft_skills'.*unknown skill"),
        ("{add-2x2: 0}", r"field 'warm_start.sft_skills'.*at least 1 problem"),
        ("[add-2x2]", r"field 'warm_start.sft_skills'"),
    ],
)
def test_bad_sft_skills_name_the_field(tmp_path, extra, message):
    text = FIELD.read_text().replace("  seed: 0\npool:", f"  sft_skills: {extra}\n  seed: 0\npool:")
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ExperimentConfigError, match=message):
        load_experiment(tmp_path / "c.yaml")


def test_more_sft_problems_than_the_skill_has_names_the_field():
    with pytest.raises(SkillMixError, match=r"field 'warm_start.sft_skills': asks for 8101 'add-2x2'"):
        WarmStart(sft_skills={"add-2x2": 8101}).seen_problems()
    # `limr model sft` (SFTConfig.skills) names its own setting, not the study's
    with pytest.raises(SkillMixError, match=r"field 'skills': asks for 8101 'add-2x2'"):
        sft_problems(600, 0, (1,), {"add-2x2": 8101})


def test_sft_examples_work_the_extra_skill_by_column_at_the_configured_share(tmp_path):
    pytest.importorskip("transformers")
    from limr.model.sft import IGNORE, SFTConfig, build_examples
    from limr.model.tiny import build_tokenizer
    from limr.tasks.synthetic import column_solution

    tok = build_tokenizer()
    cfg = SFTConfig(model=tmp_path, out=tmp_path / "o", n_train=100, levels=(1,), column_fraction=0.5,
                    skills={"add-2x2": 200})  # fmt: skip
    problems = sft_problems(100, 0, (1,), {"add-2x2": 200})
    examples = build_examples(tok, cfg)
    assert len(examples) == 300
    responses = [tok.decode([i for i, lab in zip(ids, la, strict=True) if lab != IGNORE][:-1]) for ids, la in examples]
    column = [r == column_solution(p) for r, p in zip(responses[100:], problems[100:], strict=True)]
    assert all(r in (p.solution, column_solution(p)) for r, p in zip(responses, problems, strict=True))
    assert 0.4 < sum(column) / len(column) < 0.6
    with pytest.raises(ValueError, match="skills: unknown skill"):
        SFTConfig(model=tmp_path, out=tmp_path / "o", skills={"nope": 1})


def test_cli_skill_option_parses_and_rejects_malformed_items(tmp_path):
    from typer.testing import CliRunner

    from limr.cli.main import app

    args = ["model", "sft", "--model", str(tmp_path), "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(app, [*args, "--skill", "add-2x2"])
    assert res.exit_code == 2 and "--skill 'add-2x2': expected SKILL=N" in res.output
    res = CliRunner().invoke(app, [*args, "--skill", "add-9x9=3"])
    assert res.exit_code == 2 and "unknown skill" in res.output


def test_wide_config_is_the_field_study_on_the_wider_family():
    """Arms, seeds, subsets and learner settings as the field study's; the held-out set fits the family and the
    learner evaluates all of it."""
    wide, field = load_experiment(WIDE), load_experiment(FIELD)
    assert wide.model_dump(include={"arms", "seeds", "subsets", "lim", "epochs"}) == field.model_dump(
        include={"arms", "seeds", "subsets", "lim", "epochs"}
    )
    same = {k: v for k, v in field.learner_overrides.items() if k != "data.eval_limit"}
    assert {k: v for k, v in wide.learner_overrides.items() if k != "data.eval_limit"} == same
    mix = wide.pool.mix
    assert wide.learner_overrides["data.eval_limit"] == mix.held_out >= 1000
    pool, held = make_mix(mix, held_out_exclude=wide.warm_start.seen_problems())
    assert len(pool) == mix.size and len(held) == mix.held_out
    wide_skills = set(wide.warm_start.sft_skills)
    assert {p.source.rsplit("/", 1)[-1] for p in held} == wide_skills == set(mix.held_out_shares or {})
    assert mix.held_out <= len(skill_family("add-2x2")) - wide.warm_start.sft_skills["add-2x2"]
    quick = load_experiment(WIDE, quick=True)
    assert quick.seeds == [0] and quick.warm_start.slug() != wide.warm_start.slug()
