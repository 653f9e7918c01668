"""Benchmark of the curation services; prints JSON.

1. Ingestion: a writer emits event objects at a steady rate while the scorer's ingestion loop runs (in a
   thread, the real `Ingestor.run`); per object, lag = checkpoint commit time - time the object was written.
   Also the catch-up throughput on a pre-written backlog (events/s with nothing else to wait for).
2. Query latency: `limr serve datasets` as a subprocess; an open-loop client sends a fixed request rate
   (scores pages, trajectories, manifests, downloads) and latency counts from the scheduled send time, so a
   slow server cannot hide queueing (no coordinated omission).

    python benchmarks/services.py                # local-disk store in a temp dir
    python benchmarks/services.py --s3           # a SeaweedFS S3 server on loopback (tests/support)
    python benchmarks/services.py --store s3://bucket/prefix

Prints one JSON document (benchmarks/harness.py); catch-up is measured --rounds times on separate backlogs, and
query latency percentiles are also given per window (the run split into --rounds stretches) to show drift.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.harness import Bench, parser, spread  # noqa: E402
from limr.curation.policy import PublishPolicy  # noqa: E402
from limr.events.io import PromptRecord, events_table, write_events, write_prompts  # noqa: E402
from limr.events.run import RunMeta, write_run_meta  # noqa: E402
from limr.store import ObjectStore, open_store  # noqa: E402
from services.scorer.config import ScorerSettings  # noqa: E402
from services.scorer.ingest import Ingestor  # noqa: E402


class Writer:
    """Synthetic run: `prompts` prompts, `samples` samples each per epoch, split over `steps_per_epoch` steps."""

    def __init__(self, store: ObjectStore, run_id: str, prompts: int, samples: int, steps_per_epoch: int) -> None:
        self.store, self.run_id = store, run_id
        self.prompts, self.samples, self.steps_per_epoch = prompts, samples, steps_per_epoch
        self.ids = np.array([f"q{i:07d}" for i in range(prompts)], dtype=object)
        self.rng = np.random.default_rng(0)
        self.skill = self.rng.uniform(0, 1, prompts)
        write_run_meta(store, RunMeta(run_id=run_id, num_prompts=prompts, samples_per_prompt=samples))
        write_prompts(store, run_id, [PromptRecord(p, f"prompt {p}", "0") for p in self.ids])
        self.written: dict[str, float] = {}

    def write(self, step: int) -> int:
        epoch = step // self.steps_per_epoch
        chunk = np.array_split(np.arange(self.prompts), self.steps_per_epoch)[step % self.steps_per_epoch]
        p = np.clip(self.skill[chunk] * (0.5 + 0.1 * epoch), 0, 1)
        correct = (self.rng.random((len(chunk), self.samples)) < p[:, None]).ravel()  # (B * n,)
        n = correct.size
        table = events_table(
            self.run_id,
            step,
            np.full(n, epoch, np.int32),
            np.repeat(self.ids[chunk], self.samples).tolist(),
            np.tile(np.arange(self.samples, dtype=np.int32), len(chunk)),
            correct.astype(np.float32),
            correct,
            np.full(n, 64, np.int32),
        )
        key = write_events(self.store, self.run_id, step, 0, table)
        self.written[key] = time.time()
        return n


def bench_ingestion(store: ObjectStore, args: argparse.Namespace) -> dict:
    # Catch-up: a backlog written first, then one ingestion pass, once per round on its own run (the first
    # run's is what the queries read).
    secs, events = [], 0
    for r in range(args.rounds):
        backlog = Writer(store, f"bench-backlog-{r}", args.prompts, args.samples, args.steps_per_epoch)
        events = sum(backlog.write(s) for s in range(args.backlog_objects))
        settings = ScorerSettings(store=store.uri, policies=(PublishPolicy(name="{run}-lim", threshold=0.6),),
                                  checkpoint_every=args.checkpoint_every, poll_interval_s=0.05, notifications="off",
                                  runs=f"bench-backlog-{r}")  # fmt: skip
        t0 = time.perf_counter()
        Ingestor(store, settings).poll_once()
        secs.append(time.perf_counter() - t0)
    catchup = {
        "catchup_objects": args.backlog_objects,
        "catchup_events": events,
        "catchup_seconds": spread(secs, 3),
        "catchup_events_per_s": spread([events / s for s in secs], 0),
    }
    if args.queries_only:
        return catchup

    # Steady rate: the writer emits objects every 1/rate seconds while the ingestion loop runs.
    writer = Writer(store, "bench-steady", args.prompts, args.samples, args.steps_per_epoch)
    committed: dict[str, float] = {}
    ing = Ingestor(store, settings.model_copy(update={"runs": "bench-steady"}),
                   on_commit=lambda run, keys: committed.update({k: time.time() for k in keys}))  # fmt: skip
    loop = threading.Thread(target=ing.run, daemon=True)
    loop.start()
    steady_events, start = 0, time.time()
    for i in range(args.steady_objects):
        target = start + i / args.rate
        time.sleep(max(0.0, target - time.time()))
        steady_events += writer.write(i)
    deadline = time.time() + 120
    while len(committed) < args.steady_objects and time.time() < deadline:
        time.sleep(0.01)
    end = max(committed.values())
    ing.stop_event.set()
    ing.wake.set()
    loop.join(30)
    lags = np.array([committed[k] - writer.written[k] for k in writer.written if k in committed])
    return catchup | {
        "steady_rate_objects_per_s": args.rate,
        "steady_events_per_object": args.prompts * args.samples // args.steps_per_epoch,
        "steady_objects": args.steady_objects,
        "steady_events_per_s": round(steady_events / (end - start)),
        "lag_p50_s": round(float(np.percentile(lags, 50)), 4),
        "lag_p99_s": round(float(np.percentile(lags, 99)), 4),
        "lag_max_s": round(float(lags.max()), 4),
        "checkpoint_every": args.checkpoint_every,
    }


def bench_queries(store: ObjectStore, args: argparse.Namespace, env: dict[str, str]) -> dict:
    import httpx

    from tests.support.s3server import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "limr.cli.main", "serve", "datasets", "--store", store.uri, "--port", str(port)]
    if args.api_workers > 1:
        cmd += ["--workers", str(args.api_workers)]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        paths = [
            "/v1/runs/bench-backlog-0/scores?limit=100&sort=-score",
            "/v1/runs/bench-backlog-0/scores?min_score=0.5&limit=50&offset=50",
            "/v1/runs/bench-backlog-0/prompts/q0000007",
            "/v1/datasets/bench-backlog-0-lim/versions/latest",
            "/v1/datasets",
            "/v1/runs/bench-backlog-0",
        ]
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(3 * args.api_workers):  # warm every worker's caches (scores snapshot, manifests)
                for p in paths:
                    assert client.get(p).status_code == 200, p
        n = int(args.query_rate * args.query_seconds)
        load_before = os.getloadavg()
        cpu_before = _cpu_seconds(proc.pid)
        lat, codes = asyncio.run(_open_loop(url, paths, n, args.query_rate))
        cpu = _cpu_seconds(proc.pid) - cpu_before
        windows = np.array_split(lat, args.rounds)  # consecutive stretches of the open-loop schedule
        return {
            # CPU the server spent per request: its capacity whatever else the machine runs (latency is not)
            "server_cpu_ms_per_request": round(cpu / n * 1000, 3),
            "api_workers": args.api_workers,
            "load_avg_1m_before": round(load_before[0], 2),
            "load_avg_1m_after": round(os.getloadavg()[0], 2),
            "query_rate_per_s": args.query_rate,
            "query_requests": n,
            "query_errors": int((codes != 200).sum()),
            "query_p50_ms": round(float(np.percentile(lat, 50)) * 1000, 2),
            "query_p99_ms": round(float(np.percentile(lat, 99)) * 1000, 2),
            "query_max_ms": round(float(lat.max()) * 1000, 2),
            "query_p50_ms_by_window": spread([float(np.percentile(w, 50)) * 1000 for w in windows], 2),
            "query_p99_ms_by_window": spread([float(np.percentile(w, 99)) * 1000 for w in windows], 2),
            "query_p50_ms_by_path": {
                p: round(float(np.percentile(lat[i :: len(paths)], 50)) * 1000, 2) for i, p in enumerate(paths)
            },
        }
    finally:
        proc.terminate()
        proc.wait(15)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (uvicorn workers)."""
    import psutil

    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return sum(t.user + t.system for t in (p.cpu_times() for p in procs))


async def _open_loop(url: str, paths: list[str], n: int, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Send request i at start + i / rate whatever the server's pace (open loop); latency counts from the
    scheduled time, so queueing in a slow server shows (no coordinated omission). aiohttp keeps the client's
    own cost per request low: it shares the machine with the server."""
    import aiohttp

    lat, codes = np.zeros(n), np.zeros(n, int)
    conn = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(url, connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as session:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.2

        async def one(i: int) -> None:
            scheduled = start + i / rate
            await asyncio.sleep(max(0.0, scheduled - loop.time()))
            async with session.get(paths[i % len(paths)]) as r:
                await r.read()
                codes[i] = r.status
            lat[i] = loop.time() - scheduled

        await asyncio.gather(*(one(i) for i in range(n)))
    return lat, codes


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--store", help="store URI (default: a temp local dir)")
    ap.add_argument("--s3", action="store_true", help="start a SeaweedFS S3 server on loopback (tests/support)")
    ap.add_argument("--prompts", type=int, default=4000)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--steps-per-epoch", type=int, default=16)
    ap.add_argument("--backlog-objects", type=int, default=160)
    ap.add_argument("--rounds", type=int, default=3, help="catch-up passes (each on its own backlog); query windows")
    ap.add_argument("--steady-objects", type=int, default=100)
    ap.add_argument("--rate", type=float, default=10.0, help="objects per second written in the steady phase")
    ap.add_argument("--checkpoint-every", type=int, default=16)
    ap.add_argument("--query-rate", type=float, default=50.0, help="requests per second")
    ap.add_argument("--query-seconds", type=float, default=10.0)
    ap.add_argument("--api-workers", type=int, default=1, help="uvicorn workers of the query API")
    ap.add_argument("--queries-only", action="store_true", help="skip the steady-rate ingestion phase")
    args = ap.parse_args(argv)

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    with Bench("services", args) as bench, tempfile.TemporaryDirectory(prefix="limr-bench-") as tmp:
        server = None
        if args.s3:
            from tests.support.s3server import start_s3_server

            server = start_s3_server()
            env.update(server.env())
            os.environ.update(server.env())
            uri = f"s3://{server.make_bucket('bench')}/limr"
        else:
            uri = args.store or tmp
        try:
            store = open_store(uri)
            bench.results["store"] = "seaweedfs-s3" if args.s3 else store.uri.split(":")[0]
            bench.results |= bench_ingestion(store, args)
            bench.results |= bench_queries(store, args, env)
        finally:
            if server:
                server.stop()


if __name__ == "__main__":
    main()
