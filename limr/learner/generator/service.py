"""`ServiceGenerator`: the learner's adapter to the rollout service (limr.rollout.app), a Serve deployment handle.

Requests are chunked to the service's per-request limits and sent concurrently, so Serve spreads them
over replicas and each replica's engine batches them. Weights travel over vLLM's weight-transfer API, from the
learner's rank 0 to every replica at once (limr.learner.generator.publisher), never through Ray's object store;
after a sync the exporter (limr.learner.generator.exporter) writes the version to the store when it is due.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from limr.learner.batch import Rollout
from limr.learner.config import LearnerConfig
from limr.learner.generator.base import Sampling

if TYPE_CHECKING:
    from torch import nn

    from limr.learner.dist import DistCtx
    from limr.learner.generator.exporter import WeightExporter
    from limr.learner.generator.publisher import WeightPublisher

log = logging.getLogger("limr.learner")

DEPLOYMENT = "rollout"


class ServiceGenerator:
    shared = True  # one service for all ranks: rank 0 pushes weights

    def __init__(
        self,
        app_name: str,
        max_prompts: int = 64,
        max_samples: int = 1024,
        deployment: str = DEPLOYMENT,
        exporter: WeightExporter | None = None,
    ):
        from ray import serve

        self.handle = serve.get_deployment_handle(deployment, app_name=app_name)
        self.max_prompts, self.max_samples = max_prompts, max_samples
        self.exporter = exporter  # exports the actor for replicas that start cold (None: never)
        self._publisher: WeightPublisher | None = None

    def generate(self, prompt_token_ids: list[list[int]], sampling: Sampling) -> list[Rollout]:
        if not prompt_token_ids:
            return []
        per = max(1, min(self.max_prompts, self.max_samples // sampling.n))
        starts = list(range(0, len(prompt_token_ids), per))
        pending = [self.handle.generate.remote(prompt_token_ids[s : s + per], self._spec(sampling, s)) for s in starts]
        out: list[Rollout] = []
        for start, resp in zip(starts, pending, strict=True):
            result = resp.result()
            for j, pr in enumerate(result.results):
                for k, s in enumerate(pr.samples):
                    out.append(
                        Rollout(
                            prompt_index=start + j,
                            sample=k,
                            prompt_token_ids=list(pr.prompt_token_ids),
                            response_token_ids=list(s.token_ids),
                            response_logprobs=None if s.logprobs is None else [float(x) for x in s.logprobs],
                            text=s.text,
                            finish_reason=s.finish_reason,
                            weight_version=result.weight_version,
                        )
                    )
        return out

    @staticmethod
    def _spec(sampling: Sampling, start: int):
        """The request for the chunk of prompts that starts at `start`. Each chunk carries its own seed, a
        function of the step's seed and the chunk's position only (never of timing or replica), and the engine
        mixes it with each prompt's index within the request (RolloutEngine._sampling_params), so every prompt
        of a step draws from its own stream and a run with the same seed draws the same samples."""
        from limr.rollout.types import SamplingSpec

        seed = None if sampling.seed is None else (sampling.seed * 7_919 + start) % (1 << 62)
        return SamplingSpec(
            n=sampling.n,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_new_tokens,
            seed=seed,
            logprobs=True,
        )

    def sync_weights(self, actor: nn.Module, ctx: DistCtx, final: bool = False) -> int:
        """Send the actor to every replica (all ranks call this; rank 0 sends); returns the new version. Then the
        exporter, if any, writes that version to the store when it is due, and always when `final` (the run's last
        weights: a replica restarted after the run serves them)."""
        if self._publisher is None:
            import ray

            from limr.learner.generator.publisher import WeightPublisher

            hub = None
            if ctx.is_main:
                name, namespace = self.handle.weight_hub.remote().result()
                hub = ray.get_actor(name, namespace=namespace)
            self._publisher = WeightPublisher(hub, ctx)
        version = self._publisher.publish(actor)
        if self.exporter is not None and (self.exporter.count_sync() or final):
            self._export(self.exporter, actor, version, self._publisher.hub, ctx)
        return version

    @staticmethod
    def _export(exporter: WeightExporter, actor: nn.Module, version: int, hub: Any, ctx: DistCtx) -> None:
        """Export the version just sent for cold replicas. Best effort: the running replicas have it already, so a
        failed export (store unreachable) only leaves starting replicas on the previous export; it is logged."""
        try:
            exporter.export(actor, version, hub, ctx)
        except Exception:  # noqa: BLE001
            log.exception("exporting weight version %d failed; replicas that start now load an older one", version)

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()


def rollout_args(cfg: LearnerConfig, run_id: str) -> dict[str, Any]:
    """RolloutArgs for the service a run starts: the actor's weights, logprobs of the sampling distribution
    (so the learner can compare them with its own temperature-scaled logprobs), then the config's overrides."""
    r = cfg.rollout
    args: dict[str, Any] = {
        "engine": {
            "model": cfg.model.actor,
            "max_model_len": cfg.data.max_prompt_tokens + r.max_new_tokens,
            "logprobs_mode": "processed_logprobs",
            "seed": cfg.run.seed,
        },
        "limits": {"max_tokens": r.max_new_tokens, "max_n": max(64, r.samples_per_prompt)},
        "deployment_name": DEPLOYMENT,
        "num_gpus": 1.0 if cfg.trainer.use_gpu else 0.0,
    }
    for key, value in r.service.items():
        if isinstance(value, dict) and isinstance(args.get(key), dict):
            args[key] = {**args[key], **value}
        else:
            args[key] = value
    return args
