"""Time per learner step, split into rollout / reward / experience / update / weight sync / events, as JSON,
next to the same GRPO step in TRL's `GRPOTrainer` (the peer), in one run.

Runs the real loop (limr.learner.loop.train) for --warmup + --steps steps in this process (one rank),
generating through the rollout service on a local Ray head (vLLM behind Serve) or, with --backend local,
through HF generate. Without --model/--prompts it builds a tiny model and a synthetic pool in a temp dir.
Then (--peer trl) TRL trains the same model on the same prompts with the same samples per prompt, max new
tokens, temperature, optimizer batch and micro-batch, KL coefficient (so it also runs a reference model),
learning rate and reward (limr.reward), for as many generation rounds, with the same torch threads as limr's
learner (`trainer.torch_threads`, else every core; --peer-threads to choose); its generation is HF `generate`
(TRL's default) or, with --peer-generation vllm, TRL's vLLM colocate mode (vLLM in TRL's process).

    python benchmarks/train_step.py --config configs/tiny-cpu.yaml --steps 3 --out train_step.json

Prints one JSON document (benchmarks/harness.py): per phase the seconds of each timed step with their spread,
samples per second of both, and their ratio (limr / TRL) per round.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's limr and benchmarks
from benchmarks.harness import MODEL_SIZES, Bench, build_model, parser, ratio, spread  # noqa: E402
from limr.learner.metrics import PHASES  # noqa: E402


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = parser(__doc__)
    p.add_argument("--config", default=str(REPO / "configs" / "tiny-cpu.yaml"))
    p.add_argument("--model", help="Actor directory (default: a fresh model of --size).")
    p.add_argument("--size", choices=sorted(MODEL_SIZES), default="tiny", help="Size of the fresh model.")
    p.add_argument("--prompts", help="Prompt pool (default: synthetic problems).")
    p.add_argument("--backend", choices=("service", "local"), default="service")
    p.add_argument("--steps", type=int, default=3, help="Timed steps.")
    p.add_argument("--warmup", type=int, default=1, help="Untimed steps first (engine warm-up).")
    p.add_argument("--set", action="append", default=[], help="Config override key=value (YAML value).")
    p.add_argument("--peer", choices=("trl", "none"), default="trl", help="Also time TRL's GRPOTrainer.")
    p.add_argument("--peer-threads", type=int, help="TRL's torch threads (default: limr's trainer.torch_threads).")
    p.add_argument(
        "--peer-generation", choices=("generate", "vllm"), default="generate", help="TRL's generation backend."
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    with Bench("train_step", args) as bench:
        bench.results = measure(args)
        if args.peer == "trl":
            limr_rounds = bench.results["seconds_per_step"]["total"]["rounds"]
            peer = measure_trl(args)
            bench.results["peer"] = peer
            bench.results["limr_vs_trl_samples_per_second"] = ratio(
                peer["seconds_per_step"]["rounds"], limr_rounds[: len(peer["seconds_per_step"]["rounds"])]
            )


def measure(args: argparse.Namespace) -> dict:
    """Run the loop and return the figures; call inside a Bench (it starts Ray and vLLM)."""
    import torch
    import yaml

    from limr.learner.config import load_config
    from limr.learner.dist import DistCtx
    from limr.learner.loop import train
    from limr.learner.setup import build_setup

    work = Path(tempfile.mkdtemp(prefix="limr-bench-"))
    model = args.model or str(build_model(args.size, work))
    prompts = args.prompts or str(_pool(work))
    overrides = {
        "model.actor": model,
        "data.prompts": prompts,
        "data.eval_prompts": None,
        "run.run_id": "bench",
        "run.store": str(work / "store"),
        "run.max_steps": args.warmup + args.steps,
        "run.epochs": 1000,
        "run.checkpoint_every": 10**6,
        "run.output_dir": None,
        "rollout.backend": args.backend,
        "trainer.num_workers": 1,
        "metrics.progress": False,
        "metrics.port": 0,
    }
    for item in args.set:
        k, _, v = item.partition("=")
        overrides[k] = yaml.safe_load(v)
    cfg = load_config(args.config, overrides)
    setup = build_setup(cfg)
    args.resolved = (cfg, model, setup.texts, work)  # the peer trains exactly this
    ctx = DistCtx(device=torch.device("cuda" if cfg.trainer.use_gpu else "cpu"))
    if cfg.trainer.torch_threads:
        torch.set_num_threads(cfg.trainer.torch_threads)
    steps: list[dict[str, float]] = []
    client, stop = _client(cfg, setup, ctx, args.backend)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        train(cfg, ctx, setup, client, None, lambda m, _p: steps.append(dict(m)))
    finally:
        stop()
    timed = steps[args.warmup :]
    out = {
        "benchmark": "train_step",
        "backend": args.backend,
        "device": _device(cfg),
        "config": str(args.config),
        "model": model,
        "model_size": None if args.model else args.size,
        "parameters": _parameters(model),
        "timed_steps": len(timed),
        "prompts_per_step": cfg.batch.rollout_batch_size,
        "samples_per_step": int(statistics.mean(s["n_samples"] for s in timed)),
        "samples_per_second": spread([s["n_samples"] / s["perf/step_seconds"] for s in timed], 2),
        "torch_threads": cfg.trainer.torch_threads,
        "seconds_per_step": {
            "total": _spread(timed, "perf/step_seconds"),
            **{ph: _spread(timed, f"time/{ph}") for ph in PHASES},
        },
        "share_of_step": {
            ph: round(_mean(timed, f"time/{ph}") / _mean(timed, "perf/step_seconds"), 3) for ph in PHASES
        },
        "generated_tokens_per_second": _spread(timed, "perf/tokens_per_second"),
        "mean_response_tokens": round(_mean(timed, "rollout/response_length"), 1),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # before, after
    }
    return out


def measure_trl(args: argparse.Namespace) -> dict:
    """TRL's GRPOTrainer on what `measure` just trained (args.resolved): one generation round per limr step.

    The batch vocabulary maps one to one: a round generates rollout_batch_size x samples_per_prompt samples
    (TRL's generation_batch_size, num_generations) and takes (samples / train_batch_size) x ppo_epochs optimizer
    steps of train_batch_size samples in micro-batches of micro_batch_size (TRL's per_device_train_batch_size
    and gradient_accumulation_steps; num_iterations = ppo_epochs). A round's time runs from the end of the
    previous round's last optimizer step to the end of its own, so it covers generation, reward, TRL's old and
    reference log-prob forwards and the updates.
    """
    import datasets
    import torch
    import trl
    from transformers import AutoTokenizer, TrainerCallback

    from limr.reward import grade_batch

    cfg, model, texts, work = args.resolved
    r, b = cfg.rollout, cfg.batch
    samples = b.rollout_batch_size * r.samples_per_prompt
    steps_per_round = samples // b.train_batch_size * cfg.algorithm.ppo_epochs
    # the same torch threads as limr's learner process (TRL generates and trains in that one process)
    threads = args.peer_threads or cfg.trainer.torch_threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    vllm = args.peer_generation == "vllm"
    tokenizer = AutoTokenizer.from_pretrained(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token

    def reward(completions: list[str], completion_ids: list[list[int]], answer: list[str], **_: object) -> list:
        # limr's rule and its "finished" (stopped by EOS, not by the token limit)
        finished = [len(ids) < r.max_new_tokens or ids[-1] == tokenizer.eos_token_id for ids in completion_ids]
        return [g.score for g in grade_batch(completions, answer, finished)]

    ends: list[float] = []

    class RoundClock(TrainerCallback):
        def on_step_end(self, _args, state, control, **_kw):  # noqa: ANN001, ANN202
            if state.global_step % steps_per_round == 0:
                ends.append(time.perf_counter())

    config = trl.GRPOConfig(
        output_dir=str(work / "trl"),
        per_device_train_batch_size=b.micro_batch_size,
        gradient_accumulation_steps=b.train_batch_size // b.micro_batch_size,
        generation_batch_size=samples,
        num_generations=r.samples_per_prompt,
        max_completion_length=r.max_new_tokens,
        temperature=r.temperature,
        top_p=r.top_p,
        beta=cfg.algorithm.kl_coef,
        epsilon=cfg.algorithm.clip_eps,
        num_iterations=cfg.algorithm.ppo_epochs,
        learning_rate=cfg.optim.actor_lr,
        max_steps=(args.warmup + args.steps) * steps_per_round,
        seed=cfg.run.seed,
        model_init_kwargs={"dtype": getattr(torch, cfg.model.dtype)},
        use_cpu=not cfg.trainer.use_gpu,
        use_vllm=vllm,
        **({"vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.3} if vllm else {}),
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
    )
    dataset = datasets.Dataset.from_dict({"prompt": texts.texts, "answer": texts.answers})
    trainer = trl.GRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[RoundClock()],
    )
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    trainer.train()
    marks = [t0, *ends]
    rounds = [b2 - a for a, b2 in zip(marks, marks[1:], strict=False)][args.warmup :]
    return {
        "name": "trl",
        "version": trl.__version__,
        "generation": "vLLM, TRL's colocate mode" if vllm else "transformers generate (TRL's default)",
        "torch_threads": threads,
        "timed_steps": len(rounds),
        "samples_per_step": samples,
        "optimizer_steps_per_step": steps_per_round,
        "seconds_per_step": spread(rounds, 3),
        "samples_per_second": spread([samples / t for t in rounds], 2),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def _client(cfg, setup, ctx, backend: str):
    from limr.learner.worker import make_generator

    if backend == "local":
        c = make_generator(cfg, setup, ctx)
        return c, c.close
    import ray
    from ray import serve

    from limr.learner.generator.service import ServiceGenerator, rollout_args
    from limr.rollout.app import build_app

    # address="local": a new head of our own, never a cluster another process on this machine left behind
    ray.init(address="local", num_cpus=max(4, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False)
    serve.run(build_app(rollout_args(cfg, "bench")), name="limr-bench-rollout", route_prefix="/limr-bench-rollout")

    def stop() -> None:
        serve.delete("limr-bench-rollout")
        ray.shutdown()

    return ServiceGenerator("limr-bench-rollout"), stop


def _parameters(model: str) -> int:
    """The actor's parameter count, from its safetensors headers (no weights loaded)."""
    from safetensors import safe_open

    total = 0
    for f in sorted(Path(model).glob("*.safetensors")):
        with safe_open(f, "pt") as st:
            total += sum(math.prod(st.get_slice(k).get_shape()) for k in st.keys())  # noqa: SIM118 (not a mapping)
    return total


def _pool(work: Path) -> Path:
    from limr.tasks.synthetic import SyntheticConfig, make_splits, write_jsonl

    train, _ = make_splits(SyntheticConfig(n_train=512, n_test=0))
    return write_jsonl(train, work / "train.jsonl")


def _spread(rows: list[dict[str, float]], key: str) -> dict:
    """Per-step values over the timed steps (each step is one round)."""
    return spread([r.get(key, 0.0) for r in rows], 3)


def _mean(rows: list[dict[str, float]], key: str) -> float:
    return statistics.mean(r.get(key, 0.0) for r in rows) if rows else float("nan")


def _device(cfg) -> str:
    import torch

    if cfg.trainer.use_gpu and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"


if __name__ == "__main__":
    main()
