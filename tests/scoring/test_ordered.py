"""ordered_map: results in key order whatever the finishing order, with a bounded number in flight."""

from __future__ import annotations

import random
import threading
import time

from limr.scoring.ordered import ordered_map


def test_results_come_in_key_order_with_at_most_threads_plus_one_ahead() -> None:
    lock, state = threading.Lock(), {"running": 0, "peak": 0}
    rng = random.Random(0)
    delays = [rng.random() * 0.01 for _ in range(40)]

    def work(i: int) -> int:
        with lock:
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])
        time.sleep(delays[i])
        with lock:
            state["running"] -= 1
        return i * i

    got = list(ordered_map(work, list(range(40)), threads=3))
    assert got == [(i, i * i) for i in range(40)]
    assert state["peak"] <= 3
    assert list(ordered_map(work, [0, 5], threads=1)) == [(0, 0), (5, 25)]
