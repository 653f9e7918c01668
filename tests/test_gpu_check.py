"""scripts/gpu-check.sh and scripts/gpu_check.py: the shell script lints, and the Python checks run on CPU where they
can (the PPO step under FSDP2 with gloo, on a 2-layer model of Qwen2.5-0.5B's width)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_the_shell_script_passes_shellcheck():
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    subprocess.run([shellcheck, str(REPO / "scripts/gpu-check.sh")], check=True)


def test_the_shell_script_refuses_a_machine_without_a_gpu(tmp_path):
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has an NVIDIA driver")
    r = subprocess.run(["bash", str(REPO / "scripts/gpu-check.sh"), str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"ok": False, "error": "nvidia-smi not found: this machine has no NVIDIA driver"}


def test_the_learner_config_of_the_checks_validates_and_plans():
    sys.path.insert(0, str(REPO / "scripts"))
    import gpu_check

    from limr.learner.config import LearnerConfig
    from limr.plan.check import Limits, plan_learner
    from limr.plan.shape import KNOWN

    cfg = LearnerConfig.model_validate(gpu_check.learner_config(Path("/m"), "p.jsonl", "/s", "cuda"))
    plan = plan_learner(cfg, 16, Limits(gpus=1), shape=KNOWN["Qwen2.5-0.5B"])
    assert plan.problems == []
    assert plan.estimate.memory.learner_peak + 0.3 * 79.6 < 79.6  # GiB: the learner and a 0.3 vLLM share the GPU


@pytest.mark.slow  # a 2-layer model of the 0.5B shape: ~140M parameters, mostly the embedding
def test_the_ppo_step_check_runs_on_cpu(tmp_path):
    r = subprocess.run(
        [sys.executable, str(REPO / "scripts/gpu_check.py"), "--out", str(tmp_path), "--device", "cpu",
         "--checks", "ppo_step", "--layers", "2"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    report = json.loads(r.stdout)
    step = report["checks"]["ppo_step"]
    assert r.returncode == 0 and report["ok"], r.stdout[-3000:] + r.stderr[-3000:]
    assert step["master_dtypes"] == ["torch.float32"] and step["engine_dtypes"] == ["torch.bfloat16"]
    assert step["fraction_moved"] > 0.5
