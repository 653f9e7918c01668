"""`limr import verl` at growing dump sizes: peak memory stays flat while the dump grows (the import streams
one step at a time), and the import rate.

Writes verl rollout dumps (`{step}.jsonl`, chat-templated `input`, 400-character outputs, an `acc` field) of a
pool of --prompts prompts x --samples samples, --prompts-per-step prompts per step, for each of --epochs
(e.g. 2 and 8 epochs: 4x the data), then imports each in a fresh subprocess (rounds alternate the sizes) and
records its peak RSS (`ru_maxrss`), wall time and events per second.

    python benchmarks/import_dump.py --epochs 2 8 --rounds 3 --out benchmarks/results/import_dump.json
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Bench, alternate, parser, spread  # noqa: E402

TEMPLATE = "system\nPlease reason step by step, and put your final answer within \\boxed{{}}.\nuser\n{p}\nassistant\n"
CHILD = """
import json, resource, sys, time
from limr.data import load_pool
from limr.importers import dump_format, import_dump
from limr.store import open_store
dump, pool, store, k = sys.argv[1:5]
t0 = time.perf_counter()
s = import_dump(open_store(store), dump_format("verl"), dump, "bench", int(k), load_pool(pool))
print(json.dumps({"seconds": time.perf_counter() - t0, "events": s.events, "epochs": s.epochs,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_dump(root: Path, prompts: list[str], samples: int, per_step: int, epochs: int, seed: int = 0) -> int:
    """verl `{step}.jsonl` files for `epochs` epochs; returns the bytes written."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    step, size = 0, 0
    for _ in range(epochs):
        order = prompts[:]
        rng.shuffle(order)
        for i in range(0, len(order), per_step):
            step += 1
            lines = []
            for p in order[i : i + per_step]:
                for _ in range(samples):
                    ok = rng.random() < 0.4
                    row = {"input": TEMPLATE.format(p=p), "output": "x" * 400, "gts": "1", "score": float(ok)}
                    lines.append(json.dumps(row | {"step": step, "acc": ok}))
            text = "\n".join(lines) + "\n"
            (root / f"{step}.jsonl").write_text(text)
            size += len(text)
    return size


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--prompts", type=int, default=2048)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--prompts-per-step", type=int, default=128)
    ap.add_argument("--epochs", type=int, nargs="+", default=[2, 8])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    with Bench("import_dump", args) as bench, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prompts = [f"Problem {i}: compute {i} * {i % 97} + {i % 13}." for i in range(args.prompts)]
        pool = work / "pool.jsonl"
        pool.write_text(
            "".join(json.dumps({"id": f"p{i}", "prompt": p, "answer": "1"}) + "\n" for i, p in enumerate(prompts))
        )
        k = -(-args.prompts // args.prompts_per_step)
        sizes = {
            e: write_dump(work / f"dump-{e}", prompts, args.samples, args.prompts_per_step, e) for e in args.epochs
        }
        runs: dict[int, list[dict]] = {e: [] for e in args.epochs}

        def importer(e: int):
            def run() -> None:
                store = work / f"store-{e}-{len(runs[e])}"
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, str(work / f"dump-{e}"), str(pool), str(store), str(k)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs[e].append(json.loads(out.stdout.strip().splitlines()[-1]))

            return run

        alternate({str(e): importer(e) for e in args.epochs}, rounds=args.rounds, warmup=0)
        bench.results["steps_per_epoch"] = k
        for e in args.epochs:
            rows = runs[e]
            bench.results[f"epochs_{e}"] = {
                "dump_mib": round(sizes[e] / 2**20, 1),
                "events": rows[0]["events"],
                "peak_rss_mib": spread([r["peak_rss_mib"] for r in rows], 1),
                "seconds": spread([r["seconds"] for r in rows], 2),
                "events_per_second": spread([r["events"] / r["seconds"] for r in rows], 0),
            }


if __name__ == "__main__":
    main()
