"""`limr serve scorer|datasets` configuration errors and the `limr datasets ...` client against a live API."""

from __future__ import annotations

import json
import threading
import time

import pytest
import typer
import uvicorn
from typer.testing import CliRunner

from limr.cli.main import app
from limr.cli.serve_services import parse_policy
from limr.store import open_store
from services.datasets.config import DatasetsSettings
from services.datasets.main import create_app
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor
from tests.support.s3server import free_port

runner = CliRunner()
TOKEN = "cli-token"


def test_parse_policy():
    assert parse_policy("name={run}-top,top_k=5, strategy=linear") == {
        "name": "{run}-top",
        "top_k": "5",
        "strategy": "linear",
    }
    assert parse_policy('{"name": "x", "threshold": 0.6}') == {"name": "x", "threshold": 0.6}
    for bad in ("name", "{not json", "[1]"):
        with pytest.raises(typer.BadParameter):
            parse_policy(bad)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scorer", "--poll-interval", "-1"], "poll_interval_s"),
        (["scorer", "--policy", "name=x,threshold=0.5,top_k=3"], "exactly one"),
        (["scorer", "--policy", "name=x,threshold=abc"], "threshold"),
        (["scorer", "--state-prefix", "runs"], "state_prefix"),
        (["datasets", "--port", "99999"], "port"),
    ],
)
def test_serve_rejects_bad_configuration(args, message, tmp_path):
    result = runner.invoke(app, ["serve", *args, "--store", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "invalid configuration" in result.output and message in result.output


@pytest.fixture
def live_api(s3_uri, run_writer):
    store = open_store(s3_uri)
    run_writer(store, "cli", prompts=16, epochs=2, steps_per_epoch=2).write_all()
    Ingestor(store, ScorerSettings(store=s3_uri, notifications="off")).poll_once()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(DatasetsSettings(store=s3_uri, api_token=TOKEN)), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _cli(url, *args, token=None):
    env = {"LIMR_DATASETS_URL": url, "LIMR_API_TOKEN": token or ""}
    return runner.invoke(app, ["datasets", *args], env=env)


def test_client_commands(live_api, tmp_path):
    listing = _cli(live_api, "list", "--json")
    assert listing.exit_code == 0 and json.loads(listing.output)[0]["name"] == "cli-lim-0.6"
    listed = json.loads(_cli(live_api, "versions", "cli-lim-0.6", "--json").output)
    assert [(v["version"], v["status"]) for v in listed] == [(1, "interim")]
    table = [line.split() for line in _cli(live_api, "versions", "cli-lim-0.6").output.splitlines() if line.strip()]
    assert ["VERSION", "STATUS", "EPOCHS"] == table[1][:3] and [r for r in table if r[0] == "1"][0][:2] == [
        "1",
        "interim",
    ]
    assert json.loads(_cli(live_api, "show", "cli-lim-0.6", "--json").output)["run"] == "cli"
    assert json.loads(_cli(live_api, "runs", "--json").output)[0]["run_id"] == "cli"
    assert json.loads(_cli(live_api, "run", "cli", "--json").output)["events"] == 16 * 2 * 4
    top = json.loads(_cli(live_api, "scores", "cli", "--limit", "3", "--json").output)["items"]
    assert len(top) == 3 and top[0]["score"] >= top[2]["score"]

    # people get tables: a header row, then one row per item with the same values
    table = [line.split() for line in _cli(live_api, "list").output.splitlines() if line.strip()]
    assert table[0] == ["NAME", "VERSIONS", "LATEST"] and ["cli-lim-0.6", "1", "1"] in table
    rows = [line.split() for line in _cli(live_api, "scores", "cli", "--limit", "3").output.splitlines()]
    assert ["ID", "SCORE", "SOURCE", "PROMPT", "LEFT", "OUT"] in rows
    n = int(top[0]["prompt_id"][1:])
    assert [r for r in rows if r and r[0] == top[0]["prompt_id"]] == [
        [top[0]["prompt_id"], f"{top[0]['score']:.4f}", "synthetic", "What", "is", f"{n}", "+", f"{n}?", "-"]
    ]
    found = json.loads(_cli(live_api, "scores", "cli", "-q", "is 3 +", "--source", "synthetic", "--json").output)
    assert [i["prompt_id"] for i in found["items"]] == ["p0003"] and found["sources"] == ["synthetic"]
    traj = json.loads(_cli(live_api, "trajectory", "cli", "p0003", "--json").output)
    assert traj["prompt"] == "What is 3 + 3?" and traj["answer"] == "6" and len(traj["accuracy"]) == 2
    lines = [line.split() for line in _cli(live_api, "trajectory", "cli", "p0003").output.splitlines()]
    assert "What is 3 + 3?".split() in lines and ["EPOCH", "CORRECT", "SAMPLES", "ACCURACY", "R_AVG"] in lines
    assert [r for r in lines if r[:1] == ["1"]][0][:3] == ["1", str(traj["correct"][1]), "4"]
    assert _cli(live_api, "trajectory", "cli", "nope").exit_code == 1
    shown = _cli(live_api, "show", "cli-lim-0.6").output
    assert "cli-lim-0.6 v1" in shown and "content hash" in shown and "{" not in shown
    assert "events" in _cli(live_api, "run", "cli").output and "RUN" in _cli(live_api, "runs").output

    denied = _cli(live_api, "publish", "cli-top", "--run", "cli", "--top-k", "4")
    assert denied.exit_code == 1 and "HTTP 401" in denied.output
    made = _cli(live_api, "publish", "cli-lim-0.6", "--run", "cli", "--top-k", "4", token=TOKEN)
    assert made.exit_code == 0 and "published cli-lim-0.6 v2: 4 prompts" in made.output
    again = _cli(live_api, "publish", "cli-lim-0.6", "--run", "cli", "--top-k", "4", token=TOKEN)
    assert "unchanged, existing cli-lim-0.6 v2" in again.output
    diff = json.loads(_cli(live_api, "diff", "cli-lim-0.6", "1", "2", "--json").output)
    assert diff["from_version"] == 1 and diff["to_version"] == 2

    out = tmp_path / "v2.parquet"
    assert (
        _cli(live_api, "download", "cli-lim-0.6", "-v", "2", "--format", "parquet", "--out", str(out)).exit_code == 0
    )
    assert out.read_bytes()[:4] == b"PAR1"
    missing = tmp_path / "missing.jsonl"
    failed = _cli(live_api, "download", "cli-lim-0.6", "-v", "9", "--out", str(missing))
    assert failed.exit_code == 1 and "HTTP 404" in failed.output
    assert list(tmp_path.iterdir()) == [out]  # no partial file left behind
    down = _cli("http://127.0.0.1:9", "list")
    assert down.exit_code == 1 and "error:" in down.output


def test_download_in_the_trainers_formats(live_api, tmp_path):
    """`--format verl`: verl's RL parquet; `--format hf`: a datasets folder that `load_from_disk` (and TRL) reads."""
    import datasets
    import pyarrow.parquet as pq

    want = [json.loads(x) for x in open_jsonl(live_api, tmp_path)]
    verl = tmp_path / "train.parquet"
    assert _cli(live_api, "download", "cli-lim-0.6@1", "--format", "verl", "--out", str(verl)).exit_code == 0
    rows = pq.read_table(verl).to_pylist()
    assert [r["extra_info"]["prompt_id"] for r in rows] == [w["prompt_id"] for w in want]
    first = rows[0]
    assert first["prompt"] == [{"role": "user", "content": want[0]["prompt"]}]
    assert first["reward_model"]["ground_truth"] == want[0]["answer"] and first["data_source"] == "synthetic"
    hf = tmp_path / "hf"
    assert _cli(live_api, "download", "cli-lim-0.6@latest", "--format", "hf", "--out", str(hf)).exit_code == 0
    ds = datasets.load_from_disk(str(hf))
    assert ds["prompt_id"] == [w["prompt_id"] for w in want] and ds["prompt"] == [w["prompt"] for w in want]
    again = _cli(live_api, "download", "cli-lim-0.6", "--format", "hf", "--out", str(hf))
    assert again.exit_code == 2 and "exists" in again.output
    assert _cli(live_api, "download", "cli-lim-0.6@1", "-v", "2", "--out", str(tmp_path / "x")).exit_code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "plain.jsonl", "train.parquet"]  # no leftovers


def open_jsonl(url, tmp_path):
    out = tmp_path / "plain.jsonl"
    assert _cli(url, "download", "cli-lim-0.6", "--out", str(out)).exit_code == 0
    return out.read_text().splitlines()
