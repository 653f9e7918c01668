"""The learner's adapter to the rollout service (limr.rollout.app): a Serve deployment handle in the cluster.

Requests are chunked to the service's per-request limits and sent concurrently, so Serve spreads them
over replicas and each replica's engine batches them. Weights travel over vLLM's weight-transfer API, from the
learner's rank 0 to every replica at once (limr.learner.weight_sync), never through Ray's object store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from limr.learner.batch import Rollout
from limr.learner.config import LearnerConfig
from limr.learner.rollout_client import Sampling

if TYPE_CHECKING:
    from limr.learner.dist import DistCtx
    from limr.learner.trainer import PPOTrainer
    from limr.learner.weight_export import WeightExporter
    from limr.learner.weight_sync import WeightPublisher

DEPLOYMENT = "rollout"


class ServiceRollout:
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

    @property
    def weight_version(self) -> int:
        return int(self.handle.weight_version.remote().result())

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

    def sync_weights(self, trainer: PPOTrainer, ctx: DistCtx, final: bool = False) -> int:
        """Send the actor to every replica (all ranks call this; rank 0 sends); returns the new version. `final`:
        the run's last weights, exported whatever the cadence (a replica restarted after the run serves them)."""
        if self._publisher is None:
            import ray

            from limr.learner.weight_sync import WeightPublisher

            hub = None
            if ctx.is_main:
                name, namespace = self.handle.weight_hub.remote().result()
                hub = ray.get_actor(name, namespace=namespace)
            self._publisher = WeightPublisher(hub, ctx, exporter=self.exporter)
        return self._publisher.publish(trainer.actor, export=final)

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
