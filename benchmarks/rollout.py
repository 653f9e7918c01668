"""Benchmark: rollout tokens/s of the Ray Serve service vs the bare vLLM engine, and of the engine vs transformers.

Every path generates the same batch: P prompts x n samples x exactly T new tokens (`ignore_eos`; transformers
with `min_new_tokens`), so tokens/s compare like with like. Two comparisons, each measured in alternation (one
round runs every side once, in turn) so load drift on a shared machine hits the sides alike:

1. service: the bare `RolloutEngine` (in this process), the same engine class in a Serve replica over HTTP,
   and through a deployment handle; one model, one batch shape (--prompts/--n/--max-tokens).
2. engine_vs_generate: the bare engine vs transformers `generate(do_sample=True, num_return_sequences=n)`
   over a grid of model sizes (--sizes; fresh random Qwen2 models of limr.model.tiny's family) and batch
   shapes (--shapes PxNxT). Which side wins depends on both: per-step overhead dominates tiny batches of a
   tiny model (transformers' eager loop is leaner), work per step dominates large ones (vLLM's kernels and
   paged KV cache win).

    python benchmarks/rollout.py                                  # both, default grid (a few minutes)
    python benchmarks/rollout.py --skip-service --sizes tiny --shapes 1x8x64 --rounds 1
    python benchmarks/rollout.py --model DIR --shapes 64x8x128 --out rollout.json

Prints one JSON document (benchmarks/harness.py).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's limr and benchmarks
from benchmarks.harness import MODEL_SIZES, Bench, alternate, build_model, parser, ratio, spread  # noqa: E402


def _prompts(count: int) -> list[str]:
    return [f"Q{i}: what is {i} + {2 * i + 1}? A:" for i in range(count)]


def _shape(text: str) -> tuple[int, int, int]:
    try:
        p, n, t = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--shapes: {text!r} is not PxNxT (e.g. 32x8x64)") from None
    return p, n, t


def _engine_tps(engine: Any, prompts: list[str], spec: Any) -> Callable[[], float]:
    expected = len(prompts) * spec.n * spec.max_tokens

    def run() -> float:
        t0 = time.perf_counter()
        tokens = engine.generate(prompts, spec).num_generated_tokens
        dt = time.perf_counter() - t0
        if tokens != expected:
            raise RuntimeError(f"engine generated {tokens} tokens, expected {expected}")
        return tokens / dt

    return run


class _Generate:
    """transformers `generate` on one model, sampling, exactly T new tokens per sequence."""

    def __init__(self, model_dir: str, threads: int) -> None:
        import torch
        import transformers

        torch.set_num_threads(threads)  # this process only: the engine runs in its own processes
        self.torch = torch
        self.tok = transformers.AutoTokenizer.from_pretrained(model_dir)
        self.tok.padding_side = "left"
        self.model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()

    def tps(self, prompts: list[str], n: int, max_tokens: int) -> Callable[[], float]:
        batch = self.tok(prompts, return_tensors="pt", padding=True)

        def run() -> float:
            t0 = time.perf_counter()
            with self.torch.no_grad():
                out = self.model.generate(
                    **batch,
                    do_sample=True,
                    temperature=1.0,
                    num_return_sequences=n,
                    max_new_tokens=max_tokens,
                    min_new_tokens=max_tokens,
                    pad_token_id=self.tok.pad_token_id,
                )
            dt = time.perf_counter() - t0
            return out.shape[0] * (out.shape[1] - batch.input_ids.shape[1]) / dt  # (P*n) x T tokens

        return run


def _engine_config(model_dir: str, max_tokens: int) -> Any:
    from limr.rollout.config import EngineConfig

    return EngineConfig(model=model_dir, max_model_len=max(256, 64 + max_tokens), kv_cache_gib=0.5)


def bench_service(model_dir: str, p: int, n: int, t: int, rounds: int, num_cpus: float) -> dict:
    """Bare engine vs the Serve app (HTTP and handle) on one batch, alternating."""
    import ray

    from limr.rollout.client import deploy_local
    from limr.rollout.config import RolloutArgs
    from limr.rollout.engine import RolloutEngine
    from limr.rollout.types import SamplingSpec

    cfg = _engine_config(model_dir, t)
    prompts = _prompts(p)
    spec = SamplingSpec(n=n, temperature=1.0, max_tokens=t, ignore_eos=True, seed=0)
    t0 = time.perf_counter()
    engine = RolloutEngine(cfg)
    engine_start = time.perf_counter() - t0
    ray.init(address="local", num_cpus=max(2, int(num_cpus) + 1), include_dashboard=False, log_to_driver=False)
    try:
        t0 = time.perf_counter()
        dep = deploy_local(
            RolloutArgs(engine=cfg, num_cpus=num_cpus, limits={"max_samples": p * n}),
            name="bench-rollout",
            route_prefix="/bench",
            timeout_s=600,
        )
        service_start = time.perf_counter() - t0
        try:
            tps = alternate(
                {
                    "engine": _engine_tps(engine, prompts, spec),
                    "service_http": _engine_tps(dep.http_client, prompts, spec),
                    "service_handle": _engine_tps(dep.handle_client, prompts, spec),
                },
                rounds=rounds,
            )
        finally:
            dep.shutdown()
    finally:
        ray.shutdown()
        engine.close()
    return {
        "batch": {"prompts": p, "n": n, "max_tokens": t, "tokens_per_batch": p * n * t},
        "tokens_per_s": {k: spread(v, 1) for k, v in tps.items()},
        "service_http_vs_engine": ratio(tps["service_http"], tps["engine"]),
        "service_handle_vs_engine": ratio(tps["service_handle"], tps["engine"]),
        "engine_start_s": round(engine_start, 1),
        "service_start_s": round(service_start, 1),
    }


def bench_engine_vs_generate(
    model_dir: str, size: str, shapes: list[tuple[int, int, int]], rounds: int, threads: int
) -> list:
    """One engine and one transformers model, every shape, the two sides alternating within each shape."""
    from limr.rollout.engine import RolloutEngine
    from limr.rollout.types import SamplingSpec

    engine = RolloutEngine(_engine_config(model_dir, max(t for _, _, t in shapes)))
    hf = _Generate(model_dir, threads)
    params = sum(x.numel() for x in hf.model.parameters())
    rows = []
    try:
        for p, n, t in shapes:
            prompts = _prompts(p)
            spec = SamplingSpec(n=n, temperature=1.0, max_tokens=t, ignore_eos=True, seed=0)
            tps = alternate({"engine": _engine_tps(engine, prompts, spec), "generate": hf.tps(prompts, n, t)}, rounds)
            r = ratio(tps["engine"], tps["generate"], 2)
            rows.append(
                {
                    "model": size,
                    "parameters": params,
                    "batch": {"prompts": p, "n": n, "max_tokens": t, "sequences": p * n},
                    "engine_tokens_per_s": spread(tps["engine"], 1),
                    "generate_tokens_per_s": spread(tps["generate"], 1),
                    "generate_torch_threads": threads,
                    "engine_vs_generate": r,
                    # a winner only when every round agrees; otherwise the two are within the noise
                    "faster": "engine"
                    if r["min"] > 1
                    else "generate"
                    if r["max"] < 1
                    else "neither (rounds disagree)",
                }
            )
            print(f"{size} {p}x{n}x{t}: engine/generate {r['median']}", file=sys.stderr)
    finally:
        engine.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--model", help="Model directory (default: fresh random models of --sizes)")
    ap.add_argument("--sizes", default="tiny,small", help=f"model sizes for the grid, of {','.join(MODEL_SIZES)}")
    ap.add_argument("--shapes", default="1x8x64,8x8x64,32x8x64", help="batch shapes PxNxT for the grid")
    ap.add_argument("--prompts", type=int, default=32, help="service comparison: prompts per batch")
    ap.add_argument("--n", type=int, default=8, help="service comparison: samples per prompt")
    ap.add_argument("--max-tokens", type=int, default=64, help="service comparison: new tokens per sample")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per comparison (after one warm-up)")
    ap.add_argument("--num-cpus", type=float, default=1.0, help="Ray CPUs reserved by the replica")
    ap.add_argument(
        "--generate-threads",
        type=int,
        default=1,
        help="torch threads of transformers generate (1: on a loaded 2-core machine two OpenMP threads stall "
        "each other, measured 20-40x slower than one)",
    )
    ap.add_argument("--skip-service", action="store_true", help="only the engine vs transformers grid")
    ap.add_argument("--skip-grid", action="store_true", help="only the service vs engine comparison")
    args = ap.parse_args(argv)
    shapes = [_shape(s) for s in args.shapes.split(",") if s]
    sizes = [s for s in args.sizes.split(",") if s]
    if unknown := [s for s in sizes if s not in MODEL_SIZES]:
        raise SystemExit(f"--sizes: unknown {unknown}; known: {list(MODEL_SIZES)}")

    with Bench("rollout", args) as bench, tempfile.TemporaryDirectory(prefix="limr-bench-rollout-") as tmp:

        def model(size: str) -> str:
            return args.model or str(build_model(size, Path(tmp)))

        sized = {s: MODEL_SIZES[s] or "defaults" for s in sizes}
        bench.results["models"] = {"custom": args.model} if args.model else sized
        if not args.skip_service:
            name = "custom" if args.model else sizes[0]
            bench.results["service"] = {"model": name} | bench_service(
                model(sizes[0]), args.prompts, args.n, args.max_tokens, args.rounds, args.num_cpus
            )
        if not args.skip_grid:
            grid = []
            for size in ["custom"] if args.model else sizes:
                grid += bench_engine_vs_generate(model(size), size, shapes, args.rounds, args.generate_threads)
            bench.results["engine_vs_generate"] = grid


if __name__ == "__main__":
    main()
