"""The benchmark harness: one JSON document on stdout whatever the benchmark, its libraries and children print."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks.harness import alternate, ratio, spread

REPO = Path(__file__).resolve().parents[2]

NOISY = textwrap.dedent(
    """
    import logging, os, subprocess, sys
    sys.path.insert(0, {repo!r})
    from benchmarks.harness import Bench, parser

    ap = parser("noisy")
    ap.add_argument("--fail", action="store_true")
    args = ap.parse_args()
    with Bench("noisy", args) as bench:
        print("a print to sys.stdout")
        os.write(1, b"raw bytes on fd 1\\n")
        subprocess.run([sys.executable, "-c", "print('a child process printing')"], check=True)
        logging.basicConfig(stream=sys.stdout, level=logging.INFO)
        logging.getLogger("x").info("a log line")
        if args.fail:
            raise RuntimeError("boom")
        bench.results["answer"] = 42
    """
)


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "noisy.py"
    script.write_text(NOISY.format(repo=str(REPO)))
    return subprocess.run([sys.executable, str(script), *extra], capture_output=True, text=True, timeout=60)


def test_stdout_is_exactly_one_json_document(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--out", str(tmp_path / "r" / "out.json"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # fails on any stray line
    assert doc["benchmark"] == "noisy" and doc["results"] == {"answer": 42}
    for noise in ("a print", "raw bytes", "a child process", "a log line"):
        assert noise in proc.stderr
    meta = doc["meta"]
    assert meta["command"][1].endswith("noisy.py") and meta["arguments"]["fail"] is False
    assert len(meta["git"]["commit"] or "") == 40
    assert meta["machine_before"]["cpus"] >= 1 and len(meta["machine_after"]["loadavg"]) == 3
    assert meta["versions"]["torch"] and meta["versions"]["vllm"] and meta["versions"]["ray"]
    assert json.loads((tmp_path / "r" / "out.json").read_text()) == doc


def test_log_file_takes_all_logging(tmp_path: Path) -> None:
    log = tmp_path / "bench.log"
    proc = _run(tmp_path, "--log", str(log))
    assert proc.returncode == 0 and json.loads(proc.stdout)["results"] == {"answer": 42}
    assert "a child process" in log.read_text() and "a child process" not in proc.stderr


def test_failed_run_prints_no_document(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--fail")
    assert proc.returncode != 0 and proc.stdout == ""
    assert "boom" in proc.stderr


def test_spread_and_paired_ratio() -> None:
    assert spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "rounds": [3.0, 1.0, 2.0]}
    r = ratio([2.0, 4.0, 9.0], [1.0, 1.0, 3.0])
    assert r["rounds"] == [2.0, 4.0, 3.0] and r["median"] == 3.0 and r["of_medians"] == 4.0
    with pytest.raises(ValueError, match="same"):
        ratio([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        spread([])


def test_alternate_interleaves_sides_after_warmup() -> None:
    calls: list[str] = []
    out = alternate({"a": lambda: calls.append("a") or 1.0, "b": lambda: calls.append("b")}, rounds=2, warmup=1)
    assert calls == ["a", "b"] * 3
    assert out["a"] == [1.0, 1.0] and len(out["b"]) == 2 and all(t >= 0 for t in out["b"])
