"""The scorer's memory with many runs in the store; prints JSON.

Writes `--runs` runs (each `--prompts` prompts x `--epochs` epochs, `--samples` samples per prompt, one events
object per step of `--steps-per-epoch`, finished) into a local store, then runs one scorer pass over all of
them (the real `Ingestor`, default policy: a final version per run) and reports the process's resident memory
before and after, its peak, and Python's own allocations (tracemalloc) held by the scorer's state.

    python benchmarks/scorer_memory.py --runs 100 --out benchmarks/results/scorer_memory.json
"""

from __future__ import annotations

import gc
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Bench, parser  # noqa: E402


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _write_runs(store, runs: int, prompts: int, epochs: int, samples: int, steps: int, seed: int) -> int:
    from limr.events.io import PromptRecord, events_table, write_events, write_prompts
    from limr.events.run import RunMeta, mark_run_finished, write_run_meta

    rng = np.random.default_rng(seed)
    objects = 0
    for r in range(runs):
        run_id = f"run{r:04d}"
        ids = [f"p{i:05d}" for i in range(prompts)]
        write_run_meta(store, RunMeta(run_id=run_id, num_prompts=prompts, samples_per_prompt=samples, epochs=epochs))
        write_prompts(store, run_id, (PromptRecord(p, f"q {p}", "1", "bench") for p in ids))
        p_correct = rng.uniform(0, 1, prompts)
        for epoch in range(epochs):
            for s, chunk in enumerate(np.array_split(np.arange(prompts), steps)):
                step = epoch * steps + s
                pids = [ids[i] for i in chunk for _ in range(samples)]
                correct = (rng.random((len(chunk), samples)) < p_correct[chunk, None]).ravel()
                n = len(pids)
                table = events_table(run_id, step, [epoch] * n, pids, list(range(samples)) * len(chunk),
                                     correct.astype(np.float32).tolist(), correct.tolist(), [8] * n)  # fmt: skip
                write_events(store, run_id, step, 0, table)
                objects += 1
        mark_run_finished(store, run_id, epochs)
    return objects


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--prompts", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--steps-per-epoch", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from limr.store import LocalStore
    from services.scorer.config import ScorerSettings
    from services.scorer.ingest import Ingestor

    with Bench("scorer_memory", args) as bench, tempfile.TemporaryDirectory(prefix="limr-scorer-mem-") as d:
        store = LocalStore(d)
        t0 = time.perf_counter()
        objects = _write_runs(store, args.runs, args.prompts, args.epochs, args.samples, args.steps_per_epoch,
                              args.seed)  # fmt: skip
        write_s = time.perf_counter() - t0
        gc.collect()
        rss_before = _rss_mib()
        tracemalloc.start()
        ing = Ingestor(store, ScorerSettings(store=store.uri, notifications="off", checkpoint_min_interval_s=0))
        t0 = time.perf_counter()
        ingested = ing.poll_once()
        pass_s = time.perf_counter() - t0
        gc.collect()
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        bench.results.update(
            {
                "runs": args.runs,
                "prompts_per_run": args.prompts,
                "epochs": args.epochs,
                "samples": args.samples,
                "objects": objects,
                "objects_ingested": ingested,
                "runs_failing": len(ing.failing.runs),
                "final_versions": sum(1 for s in ing.states.values() if s.final_objects == s.objects),
                "write_s": round(write_s, 2),
                "pass_s": round(pass_s, 2),
                "rss_before_mib": round(rss_before, 1),
                "rss_after_mib": round(_rss_mib(), 1),
                "rss_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "python_heap_held_mib": round(held / 2**20, 2),
                "python_heap_peak_mib": round(peak / 2**20, 2),
                "per_run_held_kib": round(held / 1024 / max(1, args.runs), 1),
            }
        )


if __name__ == "__main__":
    main()
