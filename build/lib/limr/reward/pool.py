"""Score many responses in parallel with a hard per-item time limit.

Workers are plain subprocesses (`python -m limr.reward._worker`) fed one request at a time. The pool
keeps a deadline per busy worker; a worker past it (sympy stuck on `9^{9^{9^{9}}}`, a regex blow-up)
is killed and replaced, and its item scores -1.0 with reason `timeout`. So a batch always returns, in
about (items / workers) * typical check time, never more than items * timeout / workers.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from limr.reward.grade import Grade, Reason

STARTUP_TIMEOUT_S = 120.0  # importing sympy on a loaded 2-core machine can take a while


class RewardPoolConfig(BaseModel):
    """How the reward pool runs."""

    num_workers: int = Field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)), ge=1)
    """Worker processes (each checks one response at a time)."""
    timeout_s: float = Field(2.0, gt=0)
    """Per-item limit on checking one response; past it the item scores -1.0 (`timeout`)."""
    memory_mb: int = Field(4096, ge=0)
    """Address-space cap per worker (0: none), so one pathological expression cannot exhaust RAM."""


@dataclass
class _Worker:
    proc: subprocess.Popen
    buf: bytearray
    item: int | None = None
    deadline: float = 0.0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


class RewardPool:
    """A pool of reward workers. Thread-safe: concurrent `grade` calls take turns."""

    def __init__(self, config: RewardPoolConfig | None = None) -> None:
        self.config = config or RewardPoolConfig()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self.restarts = 0  # workers killed and replaced (timeouts, crashes)

    # -- lifecycle ---------------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        env = {**os.environ, "LIMR_REWARD_WORKER_MEMORY_MB": str(self.config.memory_mb)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "limr.reward._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        return _Worker(proc, bytearray())

    def _start(self) -> None:
        fresh = [self._spawn() for _ in range(self.config.num_workers - len(self._workers))]
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for w in fresh:
            line = self._read_line(w, deadline)
            if line is None or not json.loads(line).get("ready"):
                for f in fresh:
                    f.kill()
                raise RuntimeError("reward worker failed to start (see stderr)")
        self._workers.extend(fresh)

    def close(self) -> None:
        with self._lock:
            for w in self._workers:
                w.kill()
            self._workers.clear()

    def __enter__(self) -> RewardPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scoring -----------------------------------------------------------------------------------
    def grade(
        self, responses: Sequence[str], golds: Sequence[str], finished: Sequence[bool] | None = None
    ) -> list[Grade]:
        """Grade each response against its gold answer; same order as the input."""
        if len(responses) != len(golds):
            raise ValueError(f"{len(responses)} responses but {len(golds)} gold answers")
        if finished is None:
            finished = [True] * len(responses)
        elif len(finished) != len(responses):
            raise ValueError(f"{len(responses)} responses but {len(finished)} finished flags")
        with self._lock:
            return self._grade(list(responses), list(golds), list(finished))

    def _grade(self, responses: list[str], golds: list[str], finished: list[bool]) -> list[Grade]:
        results: list[Grade | None] = [None] * len(responses)
        todo = deque(range(len(responses)))
        # unfinished responses are format errors without any checking: skip the round trip
        for i in list(todo):
            if not finished[i]:
                results[i] = Grade.of(Reason.UNFINISHED)
        todo = deque(i for i in todo if results[i] is None)
        if not todo:
            return results  # type: ignore[return-value]
        if len(self._workers) < self.config.num_workers:
            self._start()
        sel = selectors.DefaultSelector()
        try:
            while todo or any(w.item is not None for w in self._workers):
                for w in self._workers:
                    if w.item is None and todo:
                        i = todo.popleft()
                        self._send(w, i, responses[i], golds[i])
                busy = [w for w in self._workers if w.item is not None]
                now = time.monotonic()
                wait = max(0.0, min(w.deadline for w in busy) - now)
                for w in busy:
                    sel.register(w.proc.stdout, selectors.EVENT_READ, w)
                events = sel.select(timeout=wait)
                for w in busy:
                    sel.unregister(w.proc.stdout)
                for key, _ in events:
                    self._receive(key.data, results)
                now = time.monotonic()
                for w in self._workers:
                    if w.item is not None and now >= w.deadline:
                        self._replace(w, results, Reason.TIMEOUT)
        finally:
            sel.close()
        return results  # type: ignore[return-value]

    def _send(self, w: _Worker, i: int, response: str, gold: str) -> None:
        w.item, w.deadline = i, time.monotonic() + self.config.timeout_s
        try:
            w.proc.stdin.write((json.dumps({"i": i, "response": response, "gold": gold}) + "\n").encode())
            w.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            w.deadline = 0.0  # dead worker: replaced as a failed item on this loop turn

    def _receive(self, w: _Worker, results: list[Grade | None]) -> None:
        chunk = os.read(w.proc.stdout.fileno(), 1 << 16)
        if not chunk:  # the worker died (e.g. killed by the OS)
            self._replace(w, results, Reason.CHECK_FAILED)
            return
        w.buf += chunk
        if b"\n" not in w.buf:
            return
        line, _, rest = bytes(w.buf).partition(b"\n")
        w.buf = bytearray(rest)
        reply = json.loads(line)
        results[reply["i"]] = Grade(float(reply["score"]), Reason(reply["reason"]), reply["answer"])
        w.item = None

    def _replace(self, w: _Worker, results: list[Grade | None], reason: Reason) -> None:
        if w.item is not None:
            results[w.item] = Grade.of(reason)
        w.kill()
        self.restarts += 1
        fresh = self._spawn()
        line = self._read_line(fresh, time.monotonic() + STARTUP_TIMEOUT_S)
        if line is None:
            fresh.kill()
            raise RuntimeError("reward worker failed to restart (see stderr)")
        w.proc, w.buf, w.item, w.deadline = fresh.proc, fresh.buf, None, 0.0

    @staticmethod
    def _read_line(w: _Worker, deadline: float) -> bytes | None:
        """Block for one line from a worker, or None at the deadline or on exit."""
        with selectors.DefaultSelector() as sel:
            sel.register(w.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in w.buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(timeout=left):
                    return None
                chunk = os.read(w.proc.stdout.fileno(), 1 << 16)
                if not chunk:
                    return None
                w.buf += chunk
        line, _, rest = bytes(w.buf).partition(b"\n")
        w.buf = bytearray(rest)
        return line


_default: RewardPool | None = None
_default_lock = threading.Lock()


def default_pool() -> RewardPool:
    """The process-wide pool behind `score_response`/`score_batch` (started on first use, closed at exit)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = RewardPool()
            atexit.register(_default.close)
        return _default
