"""`limr eval` end to end with the tiny model on vLLM (CPU): a 20-question slice of each benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_file

pytestmark = [pytest.mark.slow, pytest.mark.vllm]


def test_eval_cli_math500_slice_and_synthetic(tmp_path: Path) -> None:
    pytest.importorskip("vllm")
    from limr.model.tiny import init_tiny_model

    data_dir = shared_file("data", "eval", "math500.jsonl").parent
    model = init_tiny_model(tmp_path / "tiny", seed=0)
    out = tmp_path / "result.json"
    limr = str(Path(sys.executable).parent / "limr")
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "TOKENIZERS_PARALLELISM": "false"}
    args = ["eval", "--model", str(model), "--data-dir", str(data_dir), "--limit", "20", "--max-tokens", "48"]
    args += ["--benchmarks", "math500,aime24,synthetic", "--out", str(out), "--kv-cache-gib", "0.5"]
    proc = subprocess.run([limr, *args], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "math500" in proc.stdout and "accuracy" in proc.stdout  # the table

    result = json.loads(out.read_text())
    assert result["model"] == str(model)
    assert set(result["accuracy"]) == {"math500", "aime24", "synthetic"}
    m = result["benchmarks"]["math500"]
    assert m["n_questions"] == 20 and m["samples_per_question"] == 1 and m["temperature"] == 0.0
    assert all(len(q["correct"]) == 1 and len(q["responses"]) == 1 for q in m["questions"])
    a = result["benchmarks"]["aime24"]
    assert a["samples_per_question"] == 4 and a["temperature"] == 0.4
    assert all(len(q["correct"]) == 4 for q in a["questions"])
    for r in result["benchmarks"].values():
        assert r["accuracy"] == sum(q["accuracy"] for q in r["questions"]) / r["n_questions"]
        assert 0.0 <= r["accuracy"] <= 1.0 and r["generated_tokens"] > 0
    # an untrained model writes no \boxed{} answers: every sample is a format error, accuracy 0
    assert m["accuracy"] == 0.0 and m["format_error_rate"] == 1.0
    assert result["settings"]["max_tokens"] == 48 and result["settings"]["protocols"]["aime24"]["n"] == 4
    assert result["protocol"] == "paper" and a["top_p"] == 0.95 and a["answer_check"] == "last_box"
    assert [d.split()[0] for d in result["deviations_from_protocol"]] == ["limit", "max_tokens"]
    assert "not the paper protocol: limit 20" in proc.stdout
