"""One bad run never stops the scorer, and no events object makes it allocate without bound."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from limr.curation.state import load_checkpoint
from limr.events.io import events_table, write_events
from limr.events.run import RunMeta, write_run_meta
from limr.store import LocalStore
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor


def _settings(uri: str, **kw) -> ScorerSettings:
    base = {"store": uri, "policies": (), "notifications": "off", "checkpoint_min_interval_s": 0}
    return ScorerSettings(**(base | kw))


def test_bad_runs_are_set_aside_and_the_healthy_run_is_ingested(tmp_path, run_writer):
    store = LocalStore(tmp_path / "store")
    healthy = run_writer(store, "healthy", prompts=6, epochs=2, steps_per_epoch=2)
    healthy.write_all()
    # a run with a valid id whose checkpoint is corrupt, and one whose run.json is nested past the parser's stack
    corrupt = run_writer(store, "corrupt", prompts=4, epochs=1, steps_per_epoch=1)
    corrupt.write_all()
    store.put("scorer/checkpoints/corrupt.ckpt", b"LIMRCKPT\x01garbage")
    deep = run_writer(store, "deep", prompts=4, epochs=1, steps_per_epoch=1)
    deep.write_all()
    store.put("runs/deep/run.json", b"[" * 200_000 + b"]" * 200_000)
    store.put("runs/bad id!/run.json", b"{}")  # a key whose run id is not a valid id
    store.put("runs/bad id!/events/0000000000-0000.parquet", store.get(healthy.keys[0]))

    ing = Ingestor(store, _settings(store.uri, poll_interval_s=0.01, run_retry_max_s=0.05))
    ing.poll_once()
    assert ing.ready is not None and ing.last_error is None
    assert load_checkpoint(store, "scorer", "healthy").objects == len(healthy.keys)
    assert load_checkpoint(store, "scorer", "deep").objects == 1  # garbage run.json: treated as unknown
    assert set(ing.failing.runs) == {"corrupt", "bad id!"}
    assert "not a limr scorer checkpoint" in ing.failing.runs["corrupt"].error
    assert "invalid run id" in ing.failing.runs["bad id!"].error
    reg = ing.metrics.registry
    assert reg.get_sample_value("limr_scorer_run_errors_total", {"run": "corrupt"}) == 1
    assert reg.get_sample_value("limr_scorer_runs_failing") == 2

    # /readyz reflects the scorer, /v1/status names the runs set aside
    from services.scorer.main import create_app

    app = create_app(_settings(store.uri))
    app.router.lifespan_context = _no_lifespan
    app.state.ingestor = ing
    ing.ready.set()
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        failing = client.get("/v1/status").json()["failing"]
        assert set(failing) == {"corrupt", "bad id!"} and failing["corrupt"]["failures"] == 1

    # the corrupt run recovers once its checkpoint is repaired (here: removed), after its backoff
    store.delete("scorer/checkpoints/corrupt.ckpt")
    for _ in range(50):
        ing.poll_once()
        if "corrupt" not in ing.failing.runs:
            break
    assert "corrupt" not in ing.failing.runs and "bad id!" in ing.failing.runs
    assert load_checkpoint(store, "scorer", "corrupt").objects == 1


class _no_lifespan:  # noqa: N801 - an async context manager standing in for the app's lifespan
    def __init__(self, app) -> None:  # noqa: ANN001
        pass

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc) -> None:  # noqa: ANN002
        return None


def _rows(run_id: str, step: int, epochs: list[int], pids: list[str]):  # noqa: ANN202
    n = len(pids)
    return events_table(run_id, step, epochs, pids, [0] * n, [1.0] * n, [True] * n, [4] * n)


def test_out_of_bounds_rows_are_quarantined_with_the_reason(tmp_path):
    store = LocalStore(tmp_path / "store")
    write_run_meta(store, RunMeta(run_id="b", num_prompts=4, epochs=3))  # run.json says 3 epochs
    good = write_events(store, "b", 0, 0, _rows("b", 0, [0, 0], ["p0", "p1"]))
    huge = write_events(store, "b", 1, 0, _rows("b", 1, [0, 99_999], ["p0", "p1"]))  # the OOM reproduction
    planned = write_events(store, "b", 2, 0, _rows("b", 2, [3], ["p0"]))  # beyond run.json epochs
    negative = write_events(store, "b", 3, 0, _rows("b", 3, [-1], ["p0"]))
    many = write_events(store, "b", 4, 0, _rows("b", 4, [1] * 6, [f"q{i}" for i in range(6)]))  # > max_prompts
    ing = Ingestor(store, _settings(store.uri, max_prompts=5))
    ing.poll_once()
    state = load_checkpoint(store, "scorer", "b")
    assert state.ingested == {good} and state.counts.num_epochs == 1 and state.counts.num_prompts == 2
    errors = {k: r.error for k, r in state.quarantined.items()}
    assert "epoch 99999 out of bounds [0, 3) (run.json epochs)" in errors[huge]
    assert "epoch 3 out of bounds" in errors[planned] and "epoch -1 out of bounds" in errors[negative]
    assert "8 distinct prompts in the run, over max_prompts 5" in errors[many]
    assert json.loads(store.get("scorer/quarantine/b/0000000001-0000.parquet.json"))["error"] == errors[huge]


def test_the_counts_size_bound_holds_without_run_json_epochs(tmp_path):
    store = LocalStore(tmp_path / "store")
    write_run_meta(store, RunMeta(run_id="c"))
    ok = write_events(store, "c", 0, 0, _rows("c", 0, [0, 9], ["p0", "p1"]))
    wide = write_events(store, "c", 1, 0, _rows("c", 1, [0, 0, 0], ["p2", "p3", "p4"]))  # 5 x 10 > 40 cells
    far = write_events(store, "c", 2, 0, _rows("c", 2, [50], ["p0"]))  # max_epochs
    ing = Ingestor(store, _settings(store.uri, max_cells=40, max_epochs=20))
    ing.poll_once()
    state = load_checkpoint(store, "scorer", "c")
    assert state.ingested == {ok}
    assert "5 prompts x 10 epochs = 50 counts, over max_cells 40" in state.quarantined[wide].error
    assert "epoch 50 out of bounds [0, 20) (the scorer's max_epochs)" in state.quarantined[far].error
