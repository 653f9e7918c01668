"""Helpers for the services tests: a deterministic synthetic run writer and service subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from limr.events.io import PromptRecord, events_table, write_events, write_prompts
from limr.events.run import RunMeta, mark_run_finished, write_run_meta
from limr.store import ObjectStore
from tests.support.s3server import free_port

REPO = Path(__file__).resolve().parents[2]


class RunWriter:
    """Writes a run like the learner does: run.json + prompts first, then one events object per step.

    Prompt i learns with its own speed, so LIM scores spread over [-x, 1]; `steps_per_epoch` steps visit
    every prompt once per epoch with `samples` samples each. Deterministic in `seed`. `attempt` N >= 1: the events
    go under the keys of resumed attempt N, as a resumed learner writes them (after limr.events.attempts'
    record_resume).
    """

    attempt = 0

    def __init__(self, store: ObjectStore, run_id: str, prompts: int = 24, epochs: int = 4, samples: int = 4,
                 steps_per_epoch: int = 3, seed: int = 0,
                 gaps: dict[int, set[int]] | None = None) -> None:  # fmt: skip
        self.store, self.run_id = store, run_id
        self.prompts, self.epochs, self.samples, self.steps_per_epoch = prompts, epochs, samples, steps_per_epoch
        self.rng = np.random.default_rng(seed)
        self.ids = [f"p{i:04d}" for i in range(prompts)]
        self.speed = self.rng.uniform(-0.1, 0.4, size=prompts)  # accuracy gained per epoch
        self.base = self.rng.uniform(0.0, 0.6, size=prompts)
        self.keys: list[str] = []
        self.gaps = gaps or {}  # epoch -> prompt indices that get no samples in it

    def records(self) -> list[PromptRecord]:
        return [PromptRecord(pid, f"What is {i} + {i}?", str(2 * i), "synthetic") for i, pid in enumerate(self.ids)]

    def start(self) -> None:
        write_run_meta(self.store, RunMeta(run_id=self.run_id, samples_per_prompt=self.samples,
                                           num_prompts=self.prompts, source="test"))  # fmt: skip
        write_prompts(self.store, self.run_id, self.records())

    def steps(self) -> Iterator[tuple[int, int]]:
        for epoch in range(self.epochs):
            for s in range(self.steps_per_epoch):
                yield epoch, epoch * self.steps_per_epoch + s

    def write_step(self, epoch: int, step: int, part: int = 0) -> str:
        chunk = np.array_split(np.arange(self.prompts), self.steps_per_epoch)[step % self.steps_per_epoch]
        chunk = np.array([i for i in chunk if i not in self.gaps.get(epoch, ())], dtype=np.int64)
        p = np.clip(self.base[chunk] + self.speed[chunk] * epoch, 0.0, 1.0)
        correct = self.rng.random((len(chunk), self.samples)) < p[:, None]  # (B, n)
        pids = [self.ids[i] for i in chunk for _ in range(self.samples)]
        n = len(pids)
        table = events_table(
            self.run_id, step, [epoch] * n, pids, list(range(self.samples)) * len(chunk),
            correct.astype(np.float32).ravel().tolist(), correct.ravel().tolist(), [16] * n,
        )  # fmt: skip
        key = write_events(self.store, self.run_id, step, part, table, self.attempt)
        self.keys.append(key)
        return key

    def finish(self) -> None:
        """The run's last object, as the learner writes it after its last step."""
        mark_run_finished(self.store, self.run_id, self.epochs)

    def write_all(self, delay_s: float = 0.0) -> None:
        self.start()
        for epoch, step in self.steps():
            self.write_step(epoch, step)
            if delay_s:
                time.sleep(delay_s)


@pytest.fixture
def run_writer():
    return RunWriter


def service_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


class Service:
    """A `limr serve ...` subprocess on a free loopback port."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, module: str = "limr.cli.main") -> None:
        """`module`: what runs `serve ...` (the crash test's tests.support.traced_scorer wraps the CLI)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [sys.executable, "-m", module, "serve", *args, "--port", str(self.port)]
        self._out = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._out, stderr=subprocess.STDOUT, cwd=REPO)

    def wait_ready(self, path: str = "/healthz", timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.url}{path} not ready in {timeout_s}s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()
