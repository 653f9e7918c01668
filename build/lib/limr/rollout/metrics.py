"""Prometheus metrics of one rollout replica (`limr_rollout_*`), served on GET /metrics.

Each replica keeps its own registry (`limr_rollout_replica_info` names the replica and model), so a scrape
of several replicas (e.g. Prometheus service discovery on the Serve pods) never mixes counters. vLLM's own
`vllm:*` metrics, which vLLM registers in the process-global registry, are appended to the same page.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class RolloutMetrics:
    """Counters, histograms and gauges of the service; `observe_generation` is called once per request."""

    def __init__(self, replica: str, model: str, window_s: float = 30.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = {"replica": replica, "model": model}
        kw = {"registry": self.registry}
        self.requests = Counter(
            "limr_rollout_requests", "HTTP/handle requests by endpoint and status", ["endpoint", "status"], **kw
        )
        self.prompts = Counter("limr_rollout_prompts", "Prompts processed", **kw)
        self.samples = Counter("limr_rollout_samples", "Samples generated (prompts x n)", **kw)
        self.prompt_tokens = Counter("limr_rollout_prompt_tokens", "Prompt tokens processed", **kw)
        self.generated_tokens = Counter("limr_rollout_generated_tokens", "Tokens generated", **kw)
        self.latency = Histogram(
            "limr_rollout_request_latency_seconds", "Request latency", ["endpoint"], buckets=LATENCY_BUCKETS, **kw
        )
        self.in_flight = Gauge("limr_rollout_in_flight_requests", "Requests being processed", **kw)
        self.tokens_per_s = Gauge(
            "limr_rollout_tokens_per_second", f"Generated tokens per second over the last {window_s:.0f}s", **kw
        )
        self.weight_version = Gauge("limr_rollout_weight_version", "Version of the weights being served", **kw)
        self.weight_updates = Counter(
            "limr_rollout_weight_updates", "Weight loads by source and status", ["source", "status"], **kw
        )
        self.kv_cache_usage = Gauge("limr_rollout_kv_cache_usage_ratio", "Engine KV-cache usage (0-1)", **kw)
        self.info = Gauge(
            "limr_rollout_replica_info", "Constant 1, labelled with replica and model", ["replica", "model"], **kw
        )
        self.info.labels(**labels).set(1)
        self._window_s = window_s
        self._events: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def observe_generation(self, prompts: int, samples: int, prompt_tokens: int, generated: int) -> None:
        self.prompts.inc(prompts)
        self.samples.inc(samples)
        self.prompt_tokens.inc(prompt_tokens)
        self.generated_tokens.inc(generated)
        with self._lock:
            self._events.append((time.monotonic(), generated))

    def _update_rate(self) -> None:
        now = time.monotonic()
        with self._lock:
            while self._events and self._events[0][0] < now - self._window_s:
                self._events.popleft()
            self.tokens_per_s.set(sum(n for _, n in self._events) / self._window_s)

    def render(self, kv_cache_usage: float | None) -> bytes:
        self._update_rate()
        if kv_cache_usage is not None:
            self.kv_cache_usage.set(kv_cache_usage)
        return generate_latest(self.registry) + generate_latest(REGISTRY)
