"""How a stream of tensors is cut into buckets: pure (no torch, no vLLM), shared by the weight transfer's sender
and receivers (limr.rollout.transfer) and by the learner's sharded exports (limr.learner.generator.exporter)."""

from __future__ import annotations


def bucket_plan(nbytes: list[int], bucket_bytes: int) -> list[range]:
    """Split tensors (their byte sizes, in stream order) into consecutive buckets of at most `bucket_bytes`
    (a larger tensor travels alone). Sender and receivers both derive the plan from the round's metadata."""
    buckets: list[range] = []
    start, size = 0, 0
    for i, n in enumerate(nbytes):
        if i > start and size + n > bucket_bytes:
            buckets.append(range(start, i))
            start, size = i, 0
        size += n
    if start < len(nbytes):
        buckets.append(range(start, len(nbytes)))
    return buckets
