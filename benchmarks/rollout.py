"""Benchmark: rollout tokens/s through the Ray Serve service vs the bare engine vs transformers `generate`.

The same batch everywhere: P prompts x n samples x exactly T new tokens (`ignore_eos`, so every path generates
the same number of tokens). The bare engine (`RolloutEngine` in this process) and the service (the same
engine class in a Serve replica, called over HTTP and through a deployment handle) are both kept alive and
measured in alternation, R rounds each, so load drift on a shared machine hits them alike; the median round
counts. transformers runs the batch with `generate(do_sample=True, num_return_sequences=n)`.

    python benchmarks/rollout.py                        # tiny model (limr.model.tiny), P=32 n=8 T=64
    python benchmarks/rollout.py --model DIR --prompts 64 --n 8 --max-tokens 128 --out rollout.json

Prints one JSON object (tokens/s of each path, service/engine ratio, engine/transformers speed-up).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def _prompts(count: int) -> list[str]:
    return [f"Q{i}: what is {i} + {2 * i + 1}? A:" for i in range(count)]


def _timed(fn) -> tuple[float, int]:  # noqa: ANN001
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result.num_generated_tokens


def _transformers_tps(model_dir: str, prompts: list[str], n: int, max_tokens: int, rounds: int) -> float:
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    batch = tok(prompts, return_tensors="pt", padding=True)
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(
                **batch,
                do_sample=True,
                temperature=1.0,
                num_return_sequences=n,
                max_new_tokens=max_tokens,
                min_new_tokens=max_tokens,
                pad_token_id=tok.pad_token_id,
            )
        elapsed = time.perf_counter() - start
        generated = out.shape[0] * (out.shape[1] - batch.input_ids.shape[1])  # (P*n) x T
        rates.append(generated / elapsed)
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="Model directory (default: a fresh tiny model)")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--hf-rounds", type=int, default=2)
    ap.add_argument("--num-cpus", type=float, default=1.0, help="Ray CPUs reserved by the replica")
    ap.add_argument("--out", type=Path, help="Also write the JSON here")
    a = ap.parse_args()

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    tmp = tempfile.mkdtemp(prefix="limr-bench-rollout-")
    model_dir = a.model
    if model_dir is None:
        from limr.model.tiny import init_tiny_model

        model_dir = str(init_tiny_model(Path(tmp) / "tiny", seed=0))

    import ray

    from limr.rollout.client import deploy_local
    from limr.rollout.config import EngineConfig, RolloutArgs
    from limr.rollout.engine import RolloutEngine
    from limr.rollout.types import SamplingSpec

    engine_cfg = EngineConfig(model=model_dir, max_model_len=max(256, 64 + a.max_tokens), kv_cache_gib=0.5)
    prompts = _prompts(a.prompts)
    spec = SamplingSpec(n=a.n, temperature=1.0, max_tokens=a.max_tokens, ignore_eos=True, seed=0)

    t0 = time.perf_counter()
    engine = RolloutEngine(engine_cfg)
    engine_start_s = time.perf_counter() - t0
    ray.init(num_cpus=max(2, int(a.num_cpus) + 1), include_dashboard=False, log_to_driver=False)
    t0 = time.perf_counter()
    dep = deploy_local(
        RolloutArgs(engine=engine_cfg, num_cpus=a.num_cpus, limits={"max_samples": a.prompts * a.n}),
        name="bench-rollout",
        route_prefix="/bench",
        timeout_s=600,
    )
    service_start_s = time.perf_counter() - t0

    paths = {
        "engine": lambda: engine.generate(prompts, spec),
        "service_http": lambda: dep.http_client.generate(prompts, spec),
        "service_handle": lambda: dep.handle_client.generate(prompts, spec),
    }
    for fn in paths.values():  # warm-up: first batches pay one-off allocation costs
        fn()
    rates: dict[str, list[float]] = {k: [] for k in paths}
    expected = a.prompts * a.n * a.max_tokens
    for _ in range(a.rounds):
        for key, fn in paths.items():
            elapsed, tokens = _timed(fn)
            assert tokens == expected, (key, tokens, expected)
            rates[key].append(tokens / elapsed)
    dep.shutdown()
    ray.shutdown()
    engine.close()
    hf = _transformers_tps(model_dir, prompts, a.n, a.max_tokens, a.hf_rounds)

    med = {k: statistics.median(v) for k, v in rates.items()}
    report = {
        "batch": {"prompts": a.prompts, "n": a.n, "max_tokens": a.max_tokens, "tokens_per_batch": expected},
        "model": model_dir if a.model else "limr.model.tiny (seed 0)",
        "rounds": a.rounds,
        "engine_tokens_per_s": round(med["engine"], 1),
        "service_http_tokens_per_s": round(med["service_http"], 1),
        "service_handle_tokens_per_s": round(med["service_handle"], 1),
        "transformers_tokens_per_s": round(hf, 1),
        "service_http_vs_engine": round(med["service_http"] / med["engine"], 3),
        "service_handle_vs_engine": round(med["service_handle"] / med["engine"], 3),
        "engine_vs_transformers": round(med["engine"] / hf, 2),
        "service_http_vs_transformers": round(med["service_http"] / hf, 2),
        "all_rounds_tokens_per_s": {k: [round(x, 1) for x in v] for k, v in rates.items()},
        "engine_start_s": round(engine_start_s, 1),
        "service_start_s": round(service_start_s, 1),
        "host": {"cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
