"""`limr plan`: counts from the learner's own code, bytes from the model's shape, problems that exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from limr.cli.main import app
from limr.learner.config import load_config
from limr.plan.check import Limits, plan_learner, tiny_shape
from limr.plan.estimate import CPU, Assumptions, estimate
from limr.plan.shape import KNOWN, model_shape
from limr.plan.sources import quantity_bytes, rayjob_limits

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "configs" / "qwen2.5-math-7b.yaml"
MATH_8K = 8523  # prompts in LIMR's data/prompts/math.8k.json
runner = CliRunner()


def _plan(*args: str):
    return runner.invoke(app, ["plan", *args])


def test_7b_shape_matches_the_hand_count_in_docs_scale():
    s = model_shape("/models/Qwen2.5-Math-7B")
    assert s is KNOWN["Qwen2.5-Math-7B"]
    assert s.layer_params == 233_057_792
    assert s.body_params == 7_070_619_136
    assert s.causal_lm_params == 7_615_616_512
    assert s.critic_params == 7_070_622_721
    assert s.kv_bytes_per_token == 57_344


def test_shape_from_a_real_config_json_counts_the_real_parameters(tmp_path):
    import torch  # noqa: F401  (transformers needs it)
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)  # fmt: skip
    model = Qwen2ForCausalLM(cfg)
    model.save_pretrained(tmp_path)
    assert model_shape(str(tmp_path)).causal_lm_params == sum(p.numel() for p in model.parameters())


def test_paper_counts_come_from_the_learners_derive():
    cfg = load_config(PAPER, {"data.prompts": "x.json"})
    est = estimate(cfg, MATH_8K, KNOWN["Qwen2.5-Math-7B"], CPU, Assumptions())
    d = cfg.derive(MATH_8K)
    assert est.derived == d
    assert (d.steps_per_epoch, d.total_steps) == (9, 189)  # every prompt once per epoch; the last step 331 prompts
    assert est.samples == (8 * 1024 + 331) * 21 * 8
    assert est.token_upper_bound == est.samples * (1024 + 3072)
    assert est.checkpoint_bytes == 12 * (7_615_616_512 + 7_070_622_721)  # fp32 masters + two AdamW moments


def test_cpu_profile_reproduces_the_measured_tiny_step():
    """benchmarks/results/train_step.json: tiny-cpu, 256 samples of 56 tokens: generation 23.7 s, experience 9.7 s,
    update 17.1 s (2 rounds, 2 cores)."""
    cfg = load_config(REPO / "configs" / "tiny-cpu.yaml", {"data.prompts": "x.json"})
    est = estimate(cfg, 128, tiny_shape(), CPU, Assumptions(mean_response_tokens=56))
    s = est.step_seconds
    assert s["generation"] == pytest.approx(23.7, rel=0.1)
    assert s["experience"] + s["update"] == pytest.approx(9.7 + 17.1, rel=0.1)


@pytest.mark.parametrize("config", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_config_passes_its_own_plan(config):
    r = _plan("--config", str(config), "--pool-size", str(MATH_8K), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["problems"] == []


@pytest.mark.parametrize("values", sorted((REPO / "charts" / "limr").glob("values*.yaml")), ids=lambda p: p.name)
def test_every_chart_values_file_passes_its_own_plan(values):
    r = _plan("--config", str(values), "--pool-size", str(MATH_8K), "--json")
    assert r.exit_code == 0, r.output


def test_values_gpu_is_checked_against_its_own_store_and_gpus():
    r = _plan("--config", str(REPO / "charts/limr/values-gpu.yaml"), "--pool-size", str(MATH_8K), "--json")
    plan = json.loads(r.output)
    run = plan["run"]
    assert run["peak_store_bytes"] <= quantity_bytes("500Gi")
    assert run["learner_gpus"] + run["rollout_gpus"] == 16
    # the same run with the retention default and a checkpoint every step does not fit the chart's MinIO
    r = _plan("--config", str(REPO / "configs/qwen2.5-math-7b.yaml"), "--pool-size", str(MATH_8K),
              "--store-size", "500Gi", "--set", "run.keep_checkpoints=2")  # fmt: skip
    assert r.exit_code == 2 and "problem: store" in r.output


def test_the_studys_rayjob_fits_its_deadline_and_gpus():
    limits = rayjob_limits(REPO / "manifests/examples/rayjob-experiment-qwen2.5-math-7b.yaml")
    assert limits.gpus == 16 and limits.deadline_s
    r = _plan("--config", str(REPO / "configs/experiment-qwen2.5-math-7b.yaml"), "--pool-size", str(MATH_8K),
              "--rayjob", str(REPO / "manifests/examples/rayjob-experiment-qwen2.5-math-7b.yaml"),
              "--store-size", "3Ti")  # the size the manifest asks for  # fmt: skip
    assert r.exit_code == 0, r.output
    r = _plan("--config", str(REPO / "configs/experiment-qwen2.5-math-7b.yaml"), "--pool-size", str(MATH_8K),
              "--deadline", str(21 * 86400))  # fmt: skip
    assert r.exit_code == 2 and "problem: deadline" in r.output


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--gpus", "8"], "gpus: the run needs 16 GPUs"),
        (["--set", "batch.micro_batch_size=32"], "memory: a learner GPU peaks"),
        (["--set", "rollout.service.engine.gpu_memory_utilization=0.2"], "cannot hold one sequence"),
        (["--set", "run.eval_every=1", "--set", "data.eval_prompts=null"], "eval: run.eval_every is 1"),
    ],
)
def test_problems_exit_2_and_name_each_one(args, problem):
    r = _plan("--config", str(PAPER), "--pool-size", str(MATH_8K), *args)
    assert r.exit_code == 2
    assert problem in r.output.replace("\n", " ")


def test_unknown_model_and_pool_are_notes_not_guesses(tmp_path):
    cfg = load_config(REPO / "configs/tiny-cpu.yaml", {"model.actor": str(tmp_path / "nowhere")})
    plan = plan_learner(cfg, None, Limits())
    assert plan.estimate is None and plan.problems == []
    assert any("no config.json" in n for n in plan.notes) and any("--pool-size" in n for n in plan.notes)


def test_train_refuses_to_start_a_run_its_plan_rejects(tmp_path):
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"prompt": "1+1", "answer": "2"}\n' * 4)
    args = ["--config", str(REPO / "configs/tiny-cpu.yaml"), "--prompts", str(pool), "--store", str(tmp_path / "s")]
    r = runner.invoke(app, ["train", *args, "--set", "data.eval_prompts=missing.jsonl"])
    assert r.exit_code == 2
    assert "plan: data.eval_prompts: missing.jsonl: no such file" in r.output


@pytest.mark.parametrize(
    ("manifest", "config"),
    [
        ("rayjob-train-own-cluster.yaml", "charts/limr/values-gpu.yaml"),
        ("rayjob-train-existing-cluster.yaml", "charts/limr/values-gpu.yaml"),
        ("rayjob-experiment-qwen2.5-math-7b.yaml", "configs/experiment-qwen2.5-math-7b.yaml"),
    ],
)
def test_every_example_rayjob_fits_the_run_it_starts(manifest, config):
    r = _plan("--config", str(REPO / config), "--pool-size", str(MATH_8K), "--store-size", "3Ti",
              "--rayjob", str(REPO / "manifests/examples" / manifest))  # fmt: skip
    assert r.exit_code == 0, r.output
