"""The GPU path, checked on one GPU (scripts/gpu-check.sh runs this; its parts also run on CPU for the tests).

Checks, each a JSON entry {"ok": bool, ...figures or "error"}:
  ppo_step   one PPO step (GAE, actor + critic + reference) of a random Qwen2-shaped model of ~0.5B parameters
             (Qwen2.5-0.5B's shape) in bf16 mixed precision under FSDP2 on one device: fp32 masters that move,
             fp32 checkpoint state, bf16 weights for the engine, peak memory and seconds;
  vllm       vLLM on CUDA: the same model served by limr's engine adapter, tokens/s of a small batch;
  transfer   `limr train` for 2 steps with a Ray Train worker and one rollout replica sharing the GPU: weights go
             to the replica over vLLM's NCCL engine after each step (rollout/weight_version must follow), and the
             replica's logprobs must match the learner's. NCCL may refuse two ranks on one GPU ("duplicate GPU");
             the entry then says so, and the check needs a second GPU.
Usage: python scripts/gpu_check.py --out DIR [--device cuda] [--checks ppo_step,vllm,transfer] [--layers N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

CHECKS = ("ppo_step", "vllm", "transfer")


def random_qwen2(out: Path, layers: int | None = None) -> Path:
    """A random-weight model of Qwen2.5-0.5B's shape (optionally fewer layers) with limr's tiny tokenizer, saved in
    bf16 as an HF directory. The tokenizer's ids are a subset of the model's vocabulary."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from limr.model.tiny import build_tokenizer
    from limr.plan.shape import KNOWN

    s = KNOWN["Qwen2.5-0.5B"]
    if layers:
        s = replace(s, layers=layers)
    tok = build_tokenizer()
    cfg = Qwen2Config(
        vocab_size=s.vocab, hidden_size=s.hidden, intermediate_size=s.intermediate, num_hidden_layers=s.layers,
        num_attention_heads=s.heads, num_key_value_heads=s.kv_heads, head_dim=s.head_dim, tie_word_embeddings=s.tied,
        max_position_embeddings=4096, bos_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def learner_config(model: Path, prompts: str, store: str, device: str, **overrides: Any) -> dict[str, Any]:
    """The learner config of the checks: paper-like PPO (GAE, bf16, FSDP) at a size one device holds."""
    gpu = device == "cuda"
    cfg: dict[str, Any] = {
        "name": "gpu-check",
        "model": {"actor": str(model), "dtype": "bfloat16", "gradient_checkpointing": True},
        "data": {"prompts": prompts, "max_prompt_tokens": 128},
        "rollout": {"samples_per_prompt": 4, "temperature": 1.2, "max_new_tokens": 64, "backend": "local"},
        "algorithm": {"estimator": "gae", "kl_coef": 0.01},
        "optim": {"actor_lr": 5e-7, "critic_lr": 9e-6},
        "batch": {"rollout_batch_size": 8, "train_batch_size": 16, "micro_batch_size": 4},
        "trainer": {"num_workers": 1, "use_gpu": gpu, "strategy": "fsdp", "cpus_per_worker": 1},
        "run": {"store": store, "checkpoint_every": 0, "keep_checkpoints": 1},  # 12 GB: only at the end
        "metrics": {"progress": False},
    }
    for dotted, value in overrides.items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return cfg


def check_ppo_step(model: Path, device: str) -> dict[str, Any]:
    """One PPO step in bf16 mixed precision under FSDP2 (world size 1) on `device`."""
    import os

    import torch
    import torch.distributed as dist

    from limr.learner.batch import Rollout
    from limr.learner.config import LearnerConfig
    from limr.learner.dist import DistCtx
    from limr.learner.generator.local import full_state
    from limr.learner.trainer import PPOTrainer

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29577")
    dist.init_process_group("nccl" if device == "cuda" else "gloo", rank=0, world_size=1)
    try:
        dev = torch.device(device, 0) if device == "cuda" else torch.device("cpu")
        if device == "cuda":
            torch.cuda.set_device(dev)
            torch.cuda.reset_peak_memory_stats()
        cfg = LearnerConfig.model_validate(learner_config(model, "unused.jsonl", "unused", device))
        t0 = time.monotonic()
        tr = PPOTrainer(cfg, cfg.derive(8), DistCtx(0, 1, 0, dev), pad_token_id=0)
        load_s = time.monotonic() - t0
        gen = torch.Generator().manual_seed(0)
        rollouts = [
            Rollout(i // 4, i % 4, torch.randint(5, 300, (96,), generator=gen).tolist(),
                    torch.randint(5, 300, (64,), generator=gen).tolist(), None, "", "stop", 0)
            for i in range(16)
        ]  # fmt: skip
        scores = torch.tensor([1.0, -0.5] * 8)
        before = {n: p.detach().float().clone() for n, p in tr.actor.named_parameters()}
        t0 = time.monotonic()
        exp, stats = tr.make_experience(rollouts, scores, n=4)
        out = tr.update(exp, 0)
        if device == "cuda":
            torch.cuda.synchronize()
        step_s = time.monotonic() - t0
        after = dict(tr.actor.named_parameters())
        moved = sum(int((after[n].detach().float() != before[n]).sum()) for n in before)
        total = sum(p.numel() for p in before.values())
        tensors, _ = tr.checkpoint_state()
        master_dtypes = sorted({str(v.dtype) for v in tensors["actor"].values()})
        engine_dtypes = sorted({str(v.dtype) for v in full_state(tr.actor).values()})
        result = {
            "ok": moved > 0.5 * total and master_dtypes == ["torch.float32"] and engine_dtypes == ["torch.bfloat16"],
            "parameters": total, "fraction_moved": moved / total, "master_dtypes": master_dtypes,
            "engine_dtypes": engine_dtypes, "load_seconds": round(load_s, 2), "step_seconds": round(step_s, 2),
            "policy_loss": out.get("losses/policy"), "value_loss": out.get("losses/value"), "kl": stats["train/kl"],
        }  # fmt: skip
        if device == "cuda":
            result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        return result
    finally:
        dist.destroy_process_group()


def check_vllm(model: Path) -> dict[str, Any]:
    """limr's engine adapter on CUDA: 32 prompts x 64 tokens from the random model."""
    from limr.rollout.config import EngineConfig
    from limr.rollout.engine import RolloutEngine
    from limr.rollout.types import SamplingSpec

    engine = RolloutEngine(
        EngineConfig(model=str(model), dtype="bfloat16", max_model_len=512, kv_cache_gib=None,
                     gpu_memory_utilization=0.3, enforce_eager=True)
    )  # fmt: skip
    try:
        prompts = [[5 + i, 17, 42, 99] for i in range(32)]
        t0 = time.monotonic()
        out = engine.generate(prompts, SamplingSpec(n=1, temperature=1.0, max_tokens=64, seed=0, ignore_eos=True))
        seconds = time.monotonic() - t0
        tokens = out.num_generated_tokens()
        return {"ok": tokens == 32 * 64, "tokens": tokens, "seconds": round(seconds, 2),
                "tokens_per_s": round(tokens / seconds, 1)}  # fmt: skip
    finally:
        engine.close()


def check_transfer(model: Path, work: Path) -> dict[str, Any]:
    """`limr train` for 2 steps, the Ray Train worker and one vLLM replica sharing the GPU (0.5 each)."""
    import yaml

    from limr.tasks.synthetic import SyntheticConfig, make_splits, write_jsonl

    train, _ = make_splits(SyntheticConfig(n_train=16, n_test=4, levels=(1,)))
    prompts = write_jsonl(train, work / "train.jsonl")
    cfg = learner_config(
        model, str(prompts), str(work / "store"), "cuda",
        **{"rollout.backend": "service", "trainer.resources": {"GPU": 0.5}, "run.max_steps": 2,
           "rollout.service": {"num_replicas": 1, "num_gpus": 0.5,
                               "engine": {"max_model_len": 512, "kv_cache_gib": None, "gpu_memory_utilization": 0.3,
                                          "enforce_eager": True}}},
    )  # fmt: skip
    path = work / "transfer.yaml"
    path.write_text(yaml.safe_dump(cfg))
    summary = work / "transfer-summary.json"
    cmd = ["limr", "train", "--config", str(path), "--run-id", "gpu-check", "--summary", str(summary),
           "--log-file", str(work / "transfer.log")]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        log = (work / "transfer.log").read_text() if (work / "transfer.log").exists() else ""
        dup = "Duplicate GPU" in log or "Duplicate GPU" in proc.stderr
        return {
            "ok": False, "returncode": proc.returncode, "seconds": round(seconds, 1),
            "error": proc.stderr[-2000:] or log[-2000:],
            "note": "NCCL refuses two ranks on one GPU: run with 2 GPUs" if dup else None,
        }  # fmt: skip
    res = json.loads(summary.read_text())
    gap = res.get("rollout/logprob_gap_mean")
    ok = res.get("train/step") == 2 and res.get("rollout/weight_version", 0) >= 1 and gap is not None and gap < 0.05
    keys = ("train/step", "rollout/weight_version", "rollout/logprob_gap_mean", "rollout/logprob_gap_max")
    return {"ok": ok, "seconds": round(seconds, 1), **{k: res.get(k) for k in keys}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="Working directory (model, store, logs).")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--checks", default=",".join(CHECKS), help=f"Comma-separated subset of {', '.join(CHECKS)}.")
    ap.add_argument("--layers", type=int, default=None, help="Fewer decoder layers than Qwen2.5-0.5B's 24.")
    args = ap.parse_args(argv)
    checks = [c for c in args.checks.split(",") if c]
    unknown = sorted(set(checks) - set(CHECKS))
    if unknown:
        ap.error(f"unknown checks {unknown}; known: {', '.join(CHECKS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"device": args.device, "checks": {}}
    try:
        import torch

        report["torch"] = torch.__version__
        if args.device == "cuda":
            report["gpu"] = torch.cuda.get_device_name(0)
        model = random_qwen2(args.out / "model", args.layers)
    except Exception as e:  # noqa: BLE001 (reported in the JSON)
        report["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(report, indent=1))
        return 1
    for name in checks:
        try:
            if name == "ppo_step":
                report["checks"][name] = check_ppo_step(model, args.device)
            elif name == "vllm":
                report["checks"][name] = check_vllm(model)
            else:
                report["checks"][name] = check_transfer(model, args.out)
        except Exception as e:  # noqa: BLE001 (one failed check does not hide the others)
            report["checks"][name] = {"ok": False, "error": f"{type(e).__name__}: {e}",
                                      "traceback": traceback.format_exc()[-3000:]}  # fmt: skip
    report["ok"] = bool(checks) and all(c["ok"] for c in report["checks"].values())
    print(json.dumps(report, indent=1, default=str))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
