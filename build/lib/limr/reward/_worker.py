"""Reward worker process: reads JSON requests on stdin, writes one JSON grade per line.

Started by `limr.reward.pool` as `python -m limr.reward._worker` (a plain subprocess, not
multiprocessing, so it never re-imports the caller's `__main__` with torch/vLLM in it). Replies go to a
private copy of stdout; anything a library prints is sent to stderr instead and cannot corrupt them.
"""

from __future__ import annotations

import json
import os
import sys


def _limit_memory(mb: int) -> None:
    """Cap the address space: a pathological expression then fails with MemoryError, not by eating RAM."""
    if mb <= 0:
        return
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (mb * 1024 * 1024, mb * 1024 * 1024))
    except (ImportError, ValueError, OSError):
        pass


def main() -> None:
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _limit_memory(int(os.environ.get("LIMR_REWARD_WORKER_MEMORY_MB", "0")))

    from limr.reward.grade import Grade, Reason, grade

    grade("\\boxed{1}", "1")  # warm up sympy/latex parsing before the first timed request
    out.write('{"ready": true}\n')
    for line in sys.stdin:
        req = json.loads(line)
        try:
            g = grade(req["response"], req["gold"], req.get("finished", True))
        except (MemoryError, RecursionError, Exception):  # noqa: B014  (the checker must never kill the worker)
            g = Grade.of(Reason.CHECK_FAILED)
        out.write(json.dumps({"i": req["i"], **g.to_dict()}) + "\n")


if __name__ == "__main__":
    main()
