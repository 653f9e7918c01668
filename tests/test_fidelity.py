"""Every setting that shapes the LIMR paper's results, pinned to the released code (docs/fidelity.md).

Each row names the line of GAIR-NLP/LIMR it comes from; a change to configs/qwen2.5-math-7b.yaml, the `paper`
evaluation protocol or the LIM defaults fails here with that line in the message. Rows where limr differs on
purpose pin limr's value and say why in docs/fidelity.md, which must cite every reference line used here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from limr.algo.lim import fill_missing_epochs, lim_from_accuracy
from limr.data.templates import LIMR_SYSTEM_PROMPT, Template, chat_messages, render_prompt
from limr.evaluation.benchmarks import PROTOCOL_SETS, protocol_for
from limr.evaluation.harness import EvalConfig
from limr.learner.config import LearnerConfig, load_config
from limr.reward import CORRECT, FORMAT_ERROR, WRONG

REPO = Path(__file__).resolve().parents[1]
FIDELITY_DOC = REPO / "docs" / "fidelity.md"


def _paper() -> LearnerConfig:
    return load_config(REPO / "configs" / "qwen2.5-math-7b.yaml")


# (what, reference file:line, limr's value, how to read limr's value)
TRAINING: list[tuple[str, str, Any, Callable[[LearnerConfig], Any]]] = [
    ("samples per prompt", "scripts/train_limr.sh:51", 8, lambda c: c.rollout.samples_per_prompt),
    ("rollout temperature", "scripts/train_limr.sh:77", 1.2, lambda c: c.rollout.temperature),
    ("rollout top_p", "openrlhf/cli/train_ppo_ray.py --top_p", 1.0, lambda c: c.rollout.top_p),
    ("generation budget", "scripts/train_limr.sh:55", 3072, lambda c: c.rollout.max_new_tokens),
    ("prompt budget", "scripts/train_limr.sh:54", 1024, lambda c: c.data.max_prompt_tokens),
    ("prompts per step", "scripts/train_limr.sh:50", 1024, lambda c: c.batch.rollout_batch_size),
    ("samples per optimizer step", "scripts/train_limr.sh:48", 256, lambda c: c.batch.train_batch_size),
    ("PPO epochs per step", "scripts/train_limr.sh:52", 1, lambda c: c.algorithm.ppo_epochs),
    ("advantage estimator", "scripts/train_limr.sh:56", "gae", lambda c: c.algorithm.estimator),
    ("actor learning rate", "scripts/train_limr.sh:57", 5e-7, lambda c: c.optim.actor_lr),
    ("critic learning rate", "scripts/train_limr.sh:58", 9e-6, lambda c: c.optim.critic_lr),
    ("KL coefficient", "scripts/train_limr.sh:59", 0.01, lambda c: c.algorithm.kl_coef),
    ("KL estimator", "openrlhf/cli/train_ppo_ray.py --use_kl_estimator_k3", "k1", lambda c: c.algorithm.kl_estimator),
    ("fixed KL coefficient", "openrlhf/cli/train_ppo_ray.py --kl_target", None, lambda c: c.algorithm.kl_target),
    ("policy clip", "scripts/train_limr.sh:60", 0.2, lambda c: c.algorithm.clip_eps),
    ("value clip", "scripts/train_limr.sh:61", 0.2, lambda c: c.algorithm.value_clip_eps),
    ("GAE lambda", "scripts/train_limr.sh:62", 0.95, lambda c: c.algorithm.lam),
    ("discount", "openrlhf/cli/train_ppo_ray.py --gamma", 1.0, lambda c: c.algorithm.gamma),
    ("bf16", "scripts/train_limr.sh:64", "bfloat16", lambda c: c.model.dtype),
    ("lr warm-up steps", "scripts/train_limr.sh:65", 10, lambda c: c.optim.warmup_steps),
    ("reward normalization", "scripts/train_limr.sh:72", True, lambda c: c.algorithm.normalize_reward),
    ("advantage whitening", "openrlhf/trainer/ppo_trainer.py fit()", True, lambda c: c.algorithm.normalize_advantages),
    ("gradient clipping", "openrlhf/cli/train_ppo_ray.py --max_norm", 1.0, lambda c: c.optim.max_grad_norm),
    ("Adam betas", "openrlhf/cli/train_ppo_ray.py --adam_betas", (0.9, 0.95), lambda c: c.optim.betas),
    ("weight decay", "openrlhf/cli/train_ppo_ray.py --l2", 0.0, lambda c: c.optim.weight_decay),
    ("seed", "openrlhf/cli/train_ppo_ray.py --seed", 42, lambda c: c.run.seed),
    ("gradient checkpointing", "scripts/train_limr.sh:76", True, lambda c: c.model.gradient_checkpointing),
    ("chat template", "scripts/train_limr.sh:69", "chat", lambda c: c.data.template),
    ("evaluate every step", "scripts/train_limr.sh:39", 1, lambda c: c.run.eval_every),
    ("evaluation set", "scripts/train_limr.sh:67", "/data/limr/test.json", lambda c: c.data.eval_prompts),
    ("all 256 evaluation prompts", "scripts/train_limr.sh:67", 256, lambda c: c.data.eval_limit),
    (
        "critic from the policy's weights",
        "openrlhf/cli/train_ppo_ray.py critic_pretrain",
        None,
        lambda c: c.model.critic,
    ),
    # deliberate differences (docs/fidelity.md says why)
    ("micro batch (memory only)", "scripts/train_limr.sh:47", 2, lambda c: c.batch.micro_batch_size),
    ("epochs (reference: until stopped)", "lim/lim.sh:7", 21, lambda c: c.run.epochs),
    ("lr schedule after warm-up", "scripts/train_limr.sh:53", "constant", lambda c: c.optim.schedule),
    ("checkpoint every 5 steps (store volume)", "scripts/train_limr.sh:40", 5, lambda c: c.run.checkpoint_every),
    (
        "keep the newest checkpoint (store volume)",
        "openrlhf/cli/train_ppo_ray.py --max_ckpt_num",
        1,
        lambda c: c.run.keep_checkpoints,
    ),
]


@pytest.mark.parametrize(("what", "ref", "want", "get"), TRAINING, ids=[r[0] for r in TRAINING])
def test_paper_training_config(what: str, ref: str, want: Any, get: Callable[[LearnerConfig], Any]) -> None:
    got = get(_paper())
    assert got == want, (
        f"configs/qwen2.5-math-7b.yaml: {what} is {got!r}, the released LIMR code has {want!r} at GAIR-NLP/LIMR "
        f"{ref} (docs/fidelity.md); change both or document the difference"
    )


EVAL = [
    ("math500 n, temperature", "eval/config.json:10-12", "math500", "n", 1),
    ("math500 greedy", "eval/config.json:10-12", "math500", "temperature", 0.0),
    ("aime24 samples", "eval/config.json:2-4", "aime24", "n", 4),
    ("aime24 temperature", "eval/config.json:2-4", "aime24", "temperature", 0.4),
    ("amc23 samples", "eval/config.json:6-8", "amc23", "n", 4),
    ("amc23 temperature", "eval/config.json:6-8", "amc23", "temperature", 0.4),
    *[(f"{b} top_p", "eval/eval.py:55", b, "top_p", 0.95) for b in ("math500", "aime24", "amc23")],
    *[(f"{b} max_tokens", "eval/eval.py:55", b, "max_tokens", 3072) for b in ("math500", "aime24", "amc23")],
    *[(f"{b} last box only", "eval/eval.py:33-37", b, "answer_check", "last_box") for b in ("math500", "aime24")],
]


@pytest.mark.parametrize(("what", "ref", "bench", "field", "want"), EVAL, ids=[r[0] for r in EVAL])
def test_paper_eval_protocol(what: str, ref: str, bench: str, field: str, want: Any) -> None:
    got = getattr(protocol_for(bench, "paper"), field)
    assert got == want, f"protocol 'paper': {what} is {got!r}, GAIR-NLP/LIMR {ref} has {want!r} (docs/fidelity.md)"


def test_paper_is_the_default_protocol_and_benchmarks() -> None:
    cfg = EvalConfig(model=Path("m"))
    assert cfg.protocol == "paper", "limr eval's default protocol must be the released eval (eval/eval.py:55)"
    assert cfg.benchmarks == ["math500", "aime24", "amc23"], "GAIR-NLP/LIMR eval/eval.py:42 evaluates these three"
    assert set(PROTOCOL_SETS) == {"paper", "reward"}


def test_paper_prompt_is_the_reference_chat() -> None:
    """eval/eval.py:23-24: system prompt + question through the tokenizer's chat template, generation prompt."""
    from transformers import AutoTokenizer

    from limr.model.tiny import init_tiny_model

    assert LIMR_SYSTEM_PROMPT == "Please reason step by step, and put your final answer within \\boxed{}."
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tok = AutoTokenizer.from_pretrained(init_tiny_model(Path(tmp) / "m", seed=0))
    reference = tok.apply_chat_template(
        [{"role": "system", "content": LIMR_SYSTEM_PROMPT}, {"role": "user", "content": "What is 1+1?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert chat_messages("What is 1+1?")[0]["content"] == LIMR_SYSTEM_PROMPT
    assert render_prompt("What is 1+1?", tok, Template.CHAT) == reference, "GAIR-NLP/LIMR eval/eval.py:23-24"


def test_lim_rules_follow_lim_selection_py() -> None:
    """lim/lim_selection.py:29 (reward == 1), :37-40 (fill from the next epoch), :45 (drop gaps), :52, :56-59."""
    assert (CORRECT, WRONG, FORMAT_ERROR) == (1.0, -0.5, -1.0), "the paper's reward values (docs/fidelity.md)"
    nan = np.nan
    acc = np.array([[nan, 0.5, 1.0], [nan, nan, 1.0], [0.0, 0.5, nan], [0.5, 0.5, 0.5]])
    filled = fill_missing_epochs(acc)
    np.testing.assert_array_equal(filled[0], [0.5, 0.5, 1.0], err_msg="lim_selection.py:37-40")
    assert np.isnan(filled[1, 0]) and np.isnan(filled[2, 2]), "lim_selection.py:37-40 fills one pass, next epoch only"
    res = lim_from_accuracy(acc)
    assert res.kept.tolist() == [True, False, False, True], "lim_selection.py:45 drops prompts with a gap left"
    r_avg = np.mean([[0.5, 0.5, 1.0], [0.5, 0.5, 0.5]], axis=0)  # :52, over the kept prompts only
    want = 1 - ((np.array([0.5, 0.5, 0.5]) - r_avg) ** 2).sum() / ((1 - r_avg) ** 2).sum()  # :56-59
    assert res.scores[-1] == pytest.approx(want), "lim_selection.py:56-59"


def test_lim_threshold_reproduces_the_published_selection() -> None:
    """lim/lim.sh:8 (threshold 0.6) with lim_selection.py:103 (>=) on the published scores gives the 1,389."""
    from limr.algo.selection import Criterion, select_lim
    from tests.conftest import shared_file

    scores = np.array([r["score"] for r in json.loads(shared_file("data", "limr", "scores.json").read_text())])
    assert len(select_lim(scores, Criterion(threshold=0.6))) == 1389, (
        "GAIR-NLP/LIMR lim/lim.sh:8, lim_selection.py:103"
    )


def test_fidelity_doc_cites_every_pinned_line() -> None:
    doc = FIDELITY_DOC.read_text()
    refs = {r[1] for r in TRAINING} | {r[1] for r in EVAL}
    refs |= {"eval/eval.py:23-24", "eval/eval.py:42", "lim/lim.sh:8", "lim/lim_selection.py:103"}
    missing = sorted(r for r in refs if r not in doc)
    assert not missing, f"docs/fidelity.md does not cite {missing}"
