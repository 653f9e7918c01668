"""The learner's side of generation: the `Generator` protocol the loop uses (`base`), the local HF sampler
(`local`), the rollout service's adapter (`service`), the weight publisher that sends the actor to the service's
replicas (`publisher`) and the exporter that writes it to the store for replicas that start cold (`exporter`).

Only `base` is imported here: the others load torch, Ray or vLLM and are imported where they are used.
"""

from limr.learner.generator.base import Generator, Sampling

__all__ = ["Generator", "Sampling"]
