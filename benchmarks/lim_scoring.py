"""Benchmark: LIM scoring of a large run in the embedded store vs a straightforward numpy baseline.

Writes a synthetic run of P prompts x E epochs x S samples (default 1,000,000 x 20 x 8 = 160M events) into a
local store, then scores it twice, each in a fresh subprocess so peak RSS is measured per implementation:

- `limr`: `limr.scoring.score_run`, what `limr score` and the scorer service run (dictionary-encoded
  prompt_id, per-object bincount, vectorized id map, threaded reads);
- `limr_score_cli`: the `limr score` command end to end, including writing one JSON line per prompt;
- `baseline`: a plain reading of the same objects (`pq.read_table` of the three columns, `np.unique` per
  object, a Python dict from ids to rows, `np.add.at`), then the same LIM math.

Each round runs the three in turn (limr, command, baseline), so load drift on a shared machine hits them alike.
Prints one JSON document (benchmarks/harness.py): sizes, write time, seconds and events/s of each with their
spread over rounds, peak RSS, the paired speed-up over the baseline, and whether the scores agree.
Use --prompts/--epochs for a quick check (e.g. --prompts 20000 --epochs 6 --rounds 1).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's limr and benchmarks
from benchmarks.harness import Bench, alternate, parser, ratio, spread  # noqa: E402

RUN = "bench"


def write_run(store_dir: str, prompts: int, epochs: int, samples: int, steps_per_epoch: int, seed: int) -> dict:
    """Write the synthetic run: each epoch visits every prompt once in a fresh random order, split into steps;
    a step is written in parts of at most `part_prompts` prompts (so a part's prompt_id dictionary stays
    below the Parquet writer's 1 MiB dictionary-page limit and stays dictionary-encoded)."""
    from limr.events.io import write_events
    from limr.events.run import RunMeta, write_run_meta
    from limr.events.schema import EVENT_SCHEMA
    from limr.store import open_store

    store = open_store(store_dir)
    rng = np.random.default_rng(seed)
    ids = pa.array(_hex_ids(prompts, rng))  # (P,) prompt ids
    skill = rng.random(prompts)  # (P,) per-prompt difficulty
    speed = rng.random(prompts) * 0.1  # (P,) learning speed
    per_step = -(-prompts // steps_per_epoch)
    part_prompts = 32_768
    t0 = time.perf_counter()
    files = 0
    step = 0
    run_col = pa.DictionaryArray.from_arrays(pa.array([0], pa.int32()), pa.array([RUN]))
    for epoch in range(epochs):
        order = rng.permutation(prompts)
        p_correct = np.clip(skill + speed * epoch, 0, 1)
        for s in range(steps_per_epoch):
            step_prompts = order[s * per_step : (s + 1) * per_step]
            for part, lo in enumerate(range(0, len(step_prompts), part_prompts)):
                chunk = step_prompts[lo : lo + part_prompts]  # (p,) prompt rows in this object
                n = len(chunk) * samples
                codes = np.repeat(np.arange(len(chunk), dtype=np.int32), samples)  # (n,)
                correct = rng.random(n) < np.repeat(p_correct[chunk], samples)
                table = pa.table(
                    {
                        "run_id": run_col.take(pa.array(np.zeros(n, np.int32))),
                        "step": pa.array(np.full(n, step, np.int64)),
                        "epoch": pa.array(np.full(n, epoch, np.int32)),
                        "prompt_id": pa.DictionaryArray.from_arrays(pa.array(codes), ids.take(pa.array(chunk))),
                        "sample": pa.array(np.tile(np.arange(samples, dtype=np.int32), len(chunk))),
                        "reward": pa.array(correct.astype(np.float32)),
                        "correct": pa.array(correct),
                        "response_tokens": pa.array(rng.integers(1, 2048, n, dtype=np.int32)),
                    },
                    schema=pa.schema(
                        [
                            pa.field("run_id", pa.dictionary(pa.int32(), pa.string())),
                            EVENT_SCHEMA.field("step"),
                            EVENT_SCHEMA.field("epoch"),
                            pa.field("prompt_id", pa.dictionary(pa.int32(), pa.string())),
                            *[EVENT_SCHEMA.field(c) for c in ("sample", "reward", "correct", "response_tokens")],
                        ]
                    ),
                )
                write_events(store, RUN, step, part, table)
                files += 1
            step += 1
        print(f"wrote epoch {epoch + 1}/{epochs} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    write_run_meta(store, RunMeta(run_id=RUN, source="benchmark", num_prompts=prompts, samples_per_prompt=samples))
    return {"write_s": round(time.perf_counter() - t0, 1), "objects": files}


def _hex_ids(n: int, rng: np.random.Generator) -> list[str]:
    # 16 hex digits, like limr's hash ids of prompts without their own id.
    return [f"{x:016x}" for x in rng.integers(0, 2**63, n, dtype=np.int64)]


def measure_limr(store_dir: str, threads: int | None) -> dict:
    from limr.scoring import score_run
    from limr.store import open_store

    t0, c0 = time.perf_counter(), time.process_time()
    res = score_run(open_store(store_dir), RUN, threads=threads)
    dt = time.perf_counter() - t0
    return _report(dt, time.process_time() - c0, res.events, res.prompt_ids, res.scores)


def measure_baseline(store_dir: str) -> dict:
    """The straightforward way: decode strings, unique per object, dict to rows, np.add.at."""
    import io

    import pyarrow.parquet as pq

    from limr.algo.lim import lim_from_accuracy
    from limr.events.io import list_event_keys
    from limr.store import open_store

    store = open_store(store_dir)
    t0, c0 = time.perf_counter(), time.process_time()
    row_of: dict[str, int] = {}
    correct = np.zeros((0, 0), np.int64)
    total = np.zeros((0, 0), np.int64)
    events = 0
    for key in list_event_keys(store, RUN):
        t = pq.read_table(io.BytesIO(store.get(key)), columns=["prompt_id", "epoch", "correct"])
        ids = t.column("prompt_id").to_numpy(zero_copy_only=False)
        uniq, inv = np.unique(ids, return_inverse=True)
        rows = np.array([row_of.setdefault(u, len(row_of)) for u in uniq], np.int64)[inv]
        epoch = t.column("epoch").to_numpy()
        ok = t.column("correct").to_numpy(zero_copy_only=False)
        need_p, need_e = len(row_of), int(epoch.max()) + 1
        if need_p > correct.shape[0] or need_e > correct.shape[1]:
            grown_c = np.zeros((max(need_p, correct.shape[0]), max(need_e, correct.shape[1])), np.int64)
            grown_t = np.zeros_like(grown_c)
            grown_c[: correct.shape[0], : correct.shape[1]] = correct
            grown_t[: total.shape[0], : total.shape[1]] = total
            correct, total = grown_c, grown_t
        np.add.at(correct, (rows, epoch), ok.astype(np.int64))
        np.add.at(total, (rows, epoch), 1)
        events += t.num_rows
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(total > 0, correct / np.maximum(total, 1), np.nan)
    res = lim_from_accuracy(acc)
    dt = time.perf_counter() - t0
    ids_in_order = list(row_of)
    kept = [ids_in_order[i] for i in np.flatnonzero(res.kept)]
    return _report(dt, time.process_time() - c0, events, kept, res.scores)


def _report(dt: float, cpu: float, events: int, ids: list[str], scores: np.ndarray) -> dict:
    order = np.argsort(np.asarray(ids))
    checksum = float(np.round(np.asarray(scores)[order][:: max(1, len(ids) // 1000)], 9).sum())
    return {
        "seconds": round(dt, 3),
        "cpu_seconds": round(cpu, 3),  # all threads; on a shared machine wall time also measures the neighbours
        "events": events,
        "events_per_s": round(events / dt),
        "events_per_cpu_s": round(events / cpu),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "prompts_scored": len(ids),
        "score_checksum": checksum,
    }


def _child(which: str, store_dir: str, threads: int | None) -> dict:
    cmd = [sys.executable, __file__, "--measure", which, "--store", store_dir]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_cli(store_dir: str) -> dict:
    """`limr score --run ... --out scores.jsonl` end to end: scoring plus one JSON line per prompt."""
    with tempfile.TemporaryDirectory(prefix="limr-bench-out-") as out_dir:
        out = Path(out_dir) / "scores.jsonl"
        cmd = [sys.executable, "-m", "limr.cli.main", "score", "--run", RUN, "--store", store_dir, "--out", str(out)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        dt = time.perf_counter() - t0
        if status != 0:
            raise RuntimeError(f"limr score exited with status {status}")
        with open(out, "rb") as f:
            lines = sum(1 for _ in f)
    return {
        "seconds": round(dt, 3),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "lines_written": lines,
    }


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--prompts", type=int, default=1_000_000)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--steps-per-epoch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds; each round runs every side once, in turn")
    ap.add_argument("--store", help="store directory (default: a temporary directory, removed at the end)")
    ap.add_argument("--reuse", action="store_true", help="score an existing benchmark run in --store")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--skip-cli", action="store_true", help="do not time the `limr score` command end to end")
    ap.add_argument("--threads", type=int, default=None, help="reader threads of the limr scorer")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--measure", choices=["limr", "baseline"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:  # a child: one measurement, one JSON line for the parent
        res = measure_limr(args.store, args.threads) if args.measure == "limr" else measure_baseline(args.store)
        print(json.dumps(res))
        return
    with Bench("lim_scoring", args) as bench, tempfile.TemporaryDirectory(prefix="limr-bench-") as tmp:
        store_dir = args.store or tmp
        out = bench.results
        out |= {"prompts": args.prompts, "epochs": args.epochs, "samples": args.samples}
        out["events"] = args.prompts * args.epochs * args.samples
        if not args.reuse:
            out.update(write_run(store_dir, args.prompts, args.epochs, args.samples, args.steps_per_epoch, args.seed))
        out["store_mib"] = round(sum(p.stat().st_size for p in Path(store_dir).rglob("*") if p.is_file()) / 2**20, 1)
        runs: dict[str, list[dict]] = {"limr": []}
        if not args.skip_cli:
            runs["limr_score_cli"] = []
        if not args.skip_baseline:
            runs["baseline"] = []
        measure = {
            "limr": lambda: _child("limr", store_dir, args.threads),
            "limr_score_cli": lambda: measure_cli(store_dir),
            "baseline": lambda: _child("baseline", store_dir, None),
        }

        def side(name: str):  # noqa: ANN202
            def run() -> float:
                runs[name].append(measure[name]())
                return runs[name][-1]["seconds"]

            return run

        seconds = alternate({name: side(name) for name in runs}, rounds=args.rounds, warmup=0)
        for name, rows in runs.items():
            out[name] = {
                "seconds": spread(seconds[name], 3),
                "events_per_s": spread([out["events"] / s for s in seconds[name]], 0),
                "cpu_seconds": spread([r["cpu_seconds"] for r in rows], 3),
                "peak_rss_mib_max": max(r["peak_rss_mib"] for r in rows),
                **{k: rows[-1][k] for k in ("prompts_scored", "score_checksum", "lines_written") if k in rows[-1]},
            }
        if "baseline" in runs:
            out["speedup_vs_baseline"] = ratio(seconds["baseline"], seconds["limr"], 2)
            out["scores_agree"] = all(
                b["score_checksum"] == a["score_checksum"] for a, b in zip(runs["limr"], runs["baseline"], strict=True)
            )
        out["targets_met"] = {
            "events_per_s>=30M": out["limr"]["events_per_s"]["median"] >= 30e6,
            "peak_rss<2GiB": out["limr"]["peak_rss_mib_max"] < 2048,
            "faster_than_baseline": out.get("speedup_vs_baseline", {}).get("min", 0) > 1,
        }


if __name__ == "__main__":
    main()
