"""Prometheus `limr_train_*` metrics from a step's stats."""

from __future__ import annotations

from prometheus_client import generate_latest

from limr.learner.metrics import TrainMetrics


def test_train_metrics_exposition():
    m = TrainMetrics(port=0, run="r1")
    stats = {
        "train/reward_mean": 0.25,
        "train/accuracy": 0.5,
        "train/kl": 0.01,
        "losses/policy": -0.1,
        "losses/value": 0.3,
        "perf/tokens_per_second": 123.0,
        "rollout/logprob_gap_mean": 0.002,
        "eval/accuracy": 0.4,
    }
    phases = {"rollout": 3.0, "update": 1.0}
    m.observe(step=7, epoch=1, s=stats, phases=phases, n_samples=64)
    text = generate_latest(m.registry).decode()
    for line in (
        'limr_train_step{run="r1"} 7.0',
        'limr_train_epoch{run="r1"} 1.0',
        'limr_train_reward_mean{run="r1"} 0.25',
        'limr_train_accuracy{run="r1"} 0.5',
        'limr_train_kl{run="r1"} 0.01',
        'limr_train_value_loss{run="r1"} 0.3',
        'limr_train_tokens_per_second{run="r1"} 123.0',
        'limr_train_phase_share{phase="rollout",run="r1"} 0.75',
        'limr_train_step_seconds{run="r1"} 4.0',
        'limr_train_samples_total{run="r1"} 64.0',
        'limr_train_eval_accuracy{run="r1"} 0.4',
    ):
        assert line in text, line
    for line in text.splitlines():  # every series names its run
        assert line.startswith("#") or 'run="r1"' in line, line
    m.close()  # the run is over: its series are gone (only active runs are exported)
    assert "r1" not in generate_latest(m.registry).decode()
