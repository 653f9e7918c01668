"""Bucket plans: pure, so the learner's exporter uses them without importing vLLM."""

from __future__ import annotations

import subprocess
import sys

from limr.rollout.buckets import bucket_plan


def test_bucket_plan_is_consecutive_bounded_and_complete() -> None:
    sizes = [4, 4, 4, 10, 1, 3]
    plan = bucket_plan(sizes, 8)
    assert [list(b) for b in plan] == [[0, 1], [2], [3], [4, 5]]  # a tensor over the bound travels alone
    assert [i for b in plan for i in b] == list(range(len(sizes)))
    assert all(sum(sizes[i] for i in b) <= 8 or len(b) == 1 for b in plan)
    assert bucket_plan([], 8) == []


def test_bucket_plan_imports_neither_vllm_nor_torch() -> None:
    code = "import sys, limr.rollout.buckets; print(sorted(m for m in ('vllm', 'torch') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
