"""Keeping every replica of a rollout deployment on the same weights.

A Serve handle call or HTTP request reaches ONE replica, yet a weight update must reach all of them. The
replica that receives an update reserves the next version number from a small named Ray actor, the
`WeightRegistry`, loads the weights, then commits them there (a failed load commits nothing; its number is
skipped). Every replica checks the registry's version before
each batch (one actor call) and in the background, and loads what it misses, so after an update returns no
replica serves older weights to a new request, and versions only ever increase.

The registry keeps only the latest source: a checkpoint URI (cheap) or the tensors themselves (the CPU path
for small models; on GPUs weights travel over NCCL instead, see docs/rollout.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ray


@dataclass
class WeightSource:
    """Where version `version` came from: a checkpoint URI, or named tensors (HF names)."""

    version: int
    uri: str | None = None
    tensors: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return "uri" if self.uri is not None else "tensors"


@ray.remote(num_cpus=0, max_concurrency=8)
class WeightRegistry:
    """Version counter and latest weights of one deployment (one actor per deployed application)."""

    def __init__(self) -> None:
        self._latest = WeightSource(version=0)
        self._reserved = 0

    def reserve(self) -> int:
        """The version number the caller's update will carry if it loads."""
        self._reserved += 1
        return self._reserved

    def commit(self, version: int, uri: str | None = None, tensors: dict[str, Any] | None = None) -> int:
        """Record a loaded update; an older one committed late (racing updates) is dropped. Returns latest."""
        if version > self._latest.version:
            self._latest = WeightSource(version=version, uri=uri, tensors=tensors)
        return self._latest.version

    def version(self) -> int:
        return self._latest.version

    def latest(self) -> WeightSource:
        return self._latest


def registry_name(deployment_id: str) -> str:
    return f"limr-rollout-weights-{deployment_id}"


def get_registry(deployment_id: str) -> Any:
    """The deployment's registry actor, created by whichever replica asks first.

    Detached, so it outlives any single replica (Serve replaces replicas freely); `deployment_id` is fresh
    for every `build_app`, so a redeployed application never inherits an old application's weights.
    """
    return WeightRegistry.options(
        name=registry_name(deployment_id), get_if_exists=True, lifetime="detached", namespace="limr-rollout"
    ).remote()
