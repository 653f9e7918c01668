"""A finished run's final datasets equal `limr select --run` on the same events (issue 14).

The scorer publishes running versions from completed epochs only; when the run writes its `_FINISHED`
marker it scores every epoch as `limr score` does (gap filling, left-out prompts) and publishes `final: true`.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from limr.cli.main import app
from limr.curation.policy import PublishPolicy
from limr.curation.publish import final_version, list_datasets, read_manifest, wait_for_final
from limr.curation.state import load_checkpoint
from limr.scoring import score_run
from limr.store import LocalStore
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor

POLICIES = (
    PublishPolicy(name="{run}-lim", strategy="lim", threshold=0.3),
    PublishPolicy(name="{run}-rand", strategy="rand", top_k=40, seed=3),
    PublishPolicy(name="{run}-linear", strategy="linear", fraction=0.25),
    PublishPolicy(name="{run}-variance", strategy="variance", top_k=50),
    PublishPolicy(name="{run}-learnability", strategy="learnability", threshold=0.15),
    PublishPolicy(name="{run}-band", strategy="pass-band", threshold=0.0, band_lo=0.2, band_hi=0.8, band_epochs=2),
)
SELECT_ARGS = {
    "lim": ["--strategy", "lim", "--threshold", "0.3"],
    "rand": ["--strategy", "rand", "--top-k", "40", "--seed", "3"],
    "linear": ["--strategy", "linear", "--fraction", "0.25"],
    "variance": ["--strategy", "variance", "--top-k", "50"],
    "learnability": ["--strategy", "learnability", "--threshold", "0.15"],
    "pass-band": ["--strategy", "pass-band", "--threshold", "0", "--band", "0.2,0.8", "--band-epochs", "2"],
}

_rng = np.random.default_rng(5)
GAPS = {
    # the example: 400 prompts, 6 epochs, 16 prompts missing from the last epoch
    "last_epoch": {5: set(range(100, 116))},
    # a gap in the middle is filled from the next epoch
    "middle": {2: set(range(0, 400, 9))},
    # several prompts with gaps in several epochs: single gaps (filled), two in a row and the first epoch
    "several": {0: {3, 4}, 1: {10, 11, 12, 50}, 2: {10, 11, 77}, 4: set(_rng.choice(400, 30, replace=False).tolist())},
}


def _select(store: LocalStore, run: str, pool: str, strategy: str, out) -> list[str]:
    args = ["select", "--run", run, "--store", store.uri, "--prompts", pool, "--out", str(out), *SELECT_ARGS[strategy]]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return [json.loads(line)["id"] for line in out.read_text().splitlines()]


def _ids(store: LocalStore, name: str, version: int) -> list[dict]:
    return [json.loads(x) for x in store.get(f"datasets/{name}/v{version}/data.jsonl").splitlines()]


@pytest.mark.parametrize("case", sorted(GAPS))
def test_final_dataset_equals_limr_select(tmp_path, run_writer, case: str) -> None:
    store = LocalStore(tmp_path / "store")
    w = run_writer(store, "r", prompts=400, epochs=6, steps_per_epoch=4, samples=4, seed=1, gaps=GAPS[case])
    ing = Ingestor(store, ScorerSettings(store=store.uri, policies=POLICIES, notifications="off"))
    w.start()
    for epoch, step in w.steps():
        w.write_step(epoch, step)
        if step % 4 == 3:
            ing.poll_once()
    running = read_manifest(store, "r-lim", list_datasets(store)["r-lim"][-1])
    assert running["final"] is False and final_version(store, "r-lim") is None
    if case == "last_epoch":  # the last epoch never completes for the running scorer
        assert running["epochs_used"] == 5

    w.finish()
    ing.poll_once()
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps({"id": r.prompt_id, "prompt": r.prompt, "answer": r.answer}) + "\n"
                            for r in w.records()))  # fmt: skip
    ref = score_run(store, "r")
    score_of = dict(zip(ref.prompt_ids, ref.scores.tolist(), strict=True))
    for policy in POLICIES:
        name = policy.dataset_name("r")
        manifest = wait_for_final(store, name, timeout_s=0)
        assert manifest["final"] is True and manifest["epochs_used"] == 6
        assert manifest["counts"]["prompts_left_out"] == len(ref.left_out)
        records = _ids(store, name, manifest["version"])
        want = _select(store, "r", str(pool), policy.strategy, tmp_path / f"{policy.strategy}.jsonl")
        assert [r["prompt_id"] for r in records] == want and want
        for r in records:  # bit-identical scores; prompts rand picked without a score have none
            assert r["score"] == score_of.get(r["prompt_id"])
    status = json.loads(store.get("scorer/status/r.json"))
    assert status["finished"] and status["final_published"] and status["epochs_complete"] == 6

    # Restarted, the scorer finds nothing to do: no new versions, the checkpoint says final is done.
    before = list_datasets(store)
    Ingestor(store, ScorerSettings(store=store.uri, policies=POLICIES, notifications="off")).poll_once()
    assert list_datasets(store) == before
    assert load_checkpoint(store, "scorer", "r").final_objects == len(w.keys)


def test_final_is_published_even_when_the_running_version_selected_the_same(tmp_path, run_writer) -> None:
    """Every epoch complete before the marker: the final version has the same records, and is its own version."""
    store = LocalStore(tmp_path / "store")
    run_writer(store, "full", prompts=30, epochs=3, seed=2).write_all()
    ing = Ingestor(store, ScorerSettings(store=store.uri, policies=POLICIES[:1], notifications="off"))
    ing.poll_once()
    assert list_datasets(store)["full-lim"] == [1]
    run_writer(store, "full", epochs=3).finish()
    ing.poll_once()
    assert list_datasets(store)["full-lim"] == [1, 2]
    assert final_version(store, "full-lim") == 2
    assert _ids(store, "full-lim", 1) == _ids(store, "full-lim", 2)
    with pytest.raises(TimeoutError, match="no final version"):
        wait_for_final(store, "absent", timeout_s=0)


def test_api_serves_the_final_version_and_publishes_finished_runs_whole(tmp_path, run_writer) -> None:
    from fastapi.testclient import TestClient

    from services.datasets.config import DatasetsSettings
    from services.datasets.main import create_app

    store = LocalStore(tmp_path / "store")
    w = run_writer(store, "api", prompts=40, epochs=4, seed=4, gaps={3: {1, 2, 3}})
    w.write_all()
    ing = Ingestor(store, ScorerSettings(store=store.uri, policies=POLICIES[:1], notifications="off"))
    ing.poll_once()
    settings = DatasetsSettings(store=store.uri, api_token="t")
    auth = {"Authorization": "Bearer t"}
    with TestClient(create_app(settings, store=store)) as api:
        assert api.get("/v1/datasets/api-lim/versions/final").status_code == 404
        assert api.get("/v1/datasets/api-lim/versions").json()["final"] is None
        assert api.get("/v1/runs/api").json()["finished"] is False
        running = api.post("/v1/datasets/by-hand/versions", json={"run": "api", "threshold": 0.3}, headers=auth)
        assert running.status_code == 201 and running.json()["final"] is False and running.json()["epochs_used"] == 3

        w.finish()
        ing.poll_once()
        final = api.get("/v1/datasets/api-lim/versions/final").json()
        assert final["final"] is True and final["epochs_used"] == 4
        assert api.get("/v1/datasets/api-lim/versions").json()["final"] == final["version"]
        data = api.get("/v1/datasets/api-lim/versions/final/data").text.splitlines()
        assert [json.loads(x)["prompt_id"] for x in data] == [r["prompt_id"] for r in _ids(store, "api-lim", 2)]
        progress = api.get("/v1/runs/api").json()
        assert progress["finished"] and progress["final_published"] and progress["epochs_complete"] == 4
        # Publishing by hand on a finished run scores it whole, like `limr select --run`: the same records.
        by_hand = api.post("/v1/datasets/by-hand/versions", json={"run": "api", "threshold": 0.3}, headers=auth)
        assert by_hand.status_code == 201 and by_hand.json()["final"] is True
        assert _ids(store, "by-hand", by_hand.json()["version"]) == _ids(store, "api-lim", final["version"])
