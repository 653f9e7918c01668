"""Prometheus `limr_train_*` metrics and the progress bar of rank 0."""

from __future__ import annotations

from contextlib import ExitStack

PHASES = ("rollout", "reward", "experience", "update", "weight_sync", "events")  # loop.train_step's timers


class TrainMetrics:
    """Gauges on a private registry served at :port/metrics (port 0: kept in memory, not served)."""

    def __init__(self, port: int = 0):
        from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

        self.registry = CollectorRegistry()
        r = self.registry

        def g(name: str, doc: str, labels: tuple[str, ...] = ()):
            return Gauge(f"limr_train_{name}", doc, labels, registry=r)

        self.step = g("step", "Completed training steps.")
        self.epoch = g("epoch", "Current epoch over the prompt pool.")
        self.reward_mean = g("reward_mean", "Mean task reward of the step's samples.")
        self.accuracy = g("accuracy", "Share of the step's samples with a correct answer.")
        self.eval_accuracy = g("eval_accuracy", "Greedy accuracy on the held-out prompts at the last evaluation.")
        self.kl = g("kl", "Per-token KL(actor || reference) estimate of the step.")
        self.kl_coef = g("kl_coef", "KL penalty coefficient.")
        self.policy_loss = g("policy_loss", "Mean clipped policy loss of the step.")
        self.value_loss = g("value_loss", "Mean clipped value loss of the step.")
        self.clipfrac = g("clipfrac", "Share of tokens whose ratio was clipped.")
        self.logprob_gap = g("logprob_gap", "Mean |engine logprob - learner logprob| per token.")
        self.tokens_per_second = g("tokens_per_second", "Generated response tokens per second of step wall time.")
        self.response_length = g("response_length", "Mean response length in tokens.")
        self.step_seconds = g("step_seconds", "Wall time of the last step.")
        self.phase_seconds = g("phase_seconds", "Seconds of the last step per phase.", ("phase",))
        self.phase_share = g("phase_share", "Share of the last step's time per phase.", ("phase",))
        self.weight_sync_seconds = g("weight_sync_seconds", "Seconds to push weights to the rollout service.")
        self.weight_version = g("weight_version", "Weight version the rollout service serves.")
        self.samples = Counter("limr_train_samples", "Rollout samples trained on.", registry=r)
        self.server = None
        if port:
            self.server, _ = start_http_server(port, addr="0.0.0.0", registry=r)

    def observe(self, step: int, epoch: int, s: dict[str, float], phases: dict[str, float], n_samples: int) -> None:
        self.step.set(step)
        self.epoch.set(epoch)
        for gauge, key in (
            (self.reward_mean, "train/reward_mean"),
            (self.accuracy, "train/accuracy"),
            (self.kl, "train/kl"),
            (self.kl_coef, "train/kl_coef"),
            (self.policy_loss, "losses/policy"),
            (self.value_loss, "losses/value"),
            (self.clipfrac, "losses/clipfrac"),
            (self.logprob_gap, "rollout/logprob_gap_mean"),
            (self.tokens_per_second, "perf/tokens_per_second"),
            (self.response_length, "rollout/response_length"),
            (self.weight_version, "rollout/weight_version"),
            (self.eval_accuracy, "eval/accuracy"),
        ):
            if key in s:
                gauge.set(s[key])
        total = sum(phases.values()) or 1.0
        self.step_seconds.set(total)
        for name, sec in phases.items():
            self.phase_seconds.labels(name).set(sec)
            self.phase_share.labels(name).set(sec / total)
        self.weight_sync_seconds.set(phases.get("weight_sync", 0.0))
        self.samples.inc(n_samples)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()


def status_line(s: dict[str, float]) -> str:
    """The progress display's text for a step: reward, accuracy, KL, throughput."""
    return (
        f"reward {s.get('train/reward_mean', 0):+.3f} acc {s.get('train/accuracy', 0):.3f} "
        f"kl {s.get('train/kl', 0):.4f} {s.get('perf/tokens_per_second', 0):.0f} tok/s"
    )


class Progress:
    """The step line of limr.console's progress display (or tqdm) for in-process runs.

    A Ray Train worker cannot reach the driver's terminal: there `enabled` is False and the worker relays
    its steps to the driver instead (limr.learner.worker, limr.learner.launch).
    """

    def __init__(self, total: int, initial: int, enabled: bool):
        from limr.console import progress

        self._stack = ExitStack()
        self.bar = self._stack.enter_context(progress("RL steps", total, enabled))
        self.bar.update(completed=initial)

    def update(self, s: dict[str, float]) -> None:
        self.bar.advance(1, status=status_line(s))

    def close(self) -> None:
        self._stack.close()
