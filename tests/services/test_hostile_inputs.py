"""Hypothesis against the store's inputs: hostile events objects, run.json files and manifests never stop the
scorer, never make it count what it must not, and never make the API answer 5xx."""

from __future__ import annotations

import io
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from limr.events.io import events_table, write_events
from limr.events.run import RunMeta, write_run_meta
from limr.store import LocalStore
from services.datasets.config import DatasetsSettings
from services.datasets.main import create_app
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
_ints = st.integers(-(2**40), 2**40)
_texts = st.text(max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_texts, inner, max_size=4),
    max_leaves=20,
)


def _scorer(store: LocalStore) -> Ingestor:
    return Ingestor(store, ScorerSettings(store=store.uri, notifications="off", max_epochs=50, max_prompts=1000))


@given(
    epochs=st.lists(st.integers(-3, 10**6), min_size=1, max_size=6),
    steps=st.lists(_ints, min_size=1, max_size=6),
    rewards=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=6),
    pids=st.lists(_texts, min_size=1, max_size=6),
    samples=st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=6),
)
@FUZZ
def test_hostile_events_are_counted_within_bounds_or_quarantined(
    tmp_path_factory, epochs, steps, rewards, pids, samples
):
    store = LocalStore(tmp_path_factory.mktemp("s"))
    write_run_meta(store, RunMeta(run_id="r", num_prompts=4))
    n = min(map(len, (epochs, steps, rewards, pids, samples)))
    table = events_table(
        "r", 0, epochs[:n], pids[:n], samples[:n], rewards[:n], [r > 0 for r in rewards[:n]], [1] * n
    ).set_column(1, "step", pa.array(steps[:n], pa.int64()))
    key = write_events(store, "r", 0, 0, table)
    ing = _scorer(store)
    ing.poll_once()
    state = ing.states["r"]
    assert not ing.failing.runs and ing.last_error is None  # the object's fault never fails the run
    assert (key in state.ingested) != (key in state.quarantined)
    if key in state.ingested:  # counted: every bound held
        assert state.counts.num_epochs <= 50 and all(0 <= e < 50 for e in epochs[:n])
        assert all(math.isfinite(r) for r in rewards[:n])


@given(columns=st.dictionaries(st.sampled_from(["run_id", "step", "epoch", "prompt_id", "sample", "reward", "correct",
                                                "response_tokens", "x"]),
                               st.sampled_from(["int", "str", "float", "bool", "null"]), max_size=9))  # fmt: skip
@FUZZ
def test_events_objects_of_any_schema_never_fail_the_run(tmp_path_factory, columns):
    make = {
        "int": pa.array([1, 2], pa.int64()), "str": pa.array(["a", "r"]), "float": pa.array([0.5, float("nan")]),
        "bool": pa.array([True, False]), "null": pa.array([None, None], pa.null()),
    }  # fmt: skip
    store = LocalStore(tmp_path_factory.mktemp("s"))
    write_run_meta(store, RunMeta(run_id="r"))
    buf = io.BytesIO()
    pq.write_table(pa.table({name: make[kind] for name, kind in columns.items()} or {"x": [1]}), buf)
    store.put("runs/r/events/0000000000-0000.parquet", buf.getvalue())
    ing = _scorer(store)
    ing.poll_once()
    assert not ing.failing.runs and len(ing.states["r"].quarantined) + ing.states["r"].objects == 1


@given(doc=_json, raw=st.binary(max_size=64), use_raw=st.booleans())
@FUZZ
def test_hostile_run_json_never_stops_the_scorer(tmp_path_factory, doc, raw, use_raw):
    store = LocalStore(tmp_path_factory.mktemp("s"))
    store.put("runs/bad/run.json", raw if use_raw else json.dumps(doc).encode())
    write_run_meta(store, RunMeta(run_id="ok", num_prompts=1))
    table = events_table("ok", 0, [0], ["p"], [0], [1.0], [True], [1])
    write_events(store, "ok", 0, 0, table)
    table = events_table("bad", 0, [0], ["p"], [0], [1.0], [True], [1])
    write_events(store, "bad", 0, 0, table)
    ing = _scorer(store)
    ing.poll_once()
    assert ing.last_error is None and not ing.failing.runs
    assert ing.states["ok"].objects == 1 and ing.states["bad"].objects == 1  # run.json is metadata only


@given(doc=_json, raw=st.binary(max_size=64), use_raw=st.booleans())
@FUZZ
def test_hostile_manifests_never_get_a_5xx(tmp_path_factory, doc, raw, use_raw):
    store = LocalStore(tmp_path_factory.mktemp("s"))
    store.put("datasets/d/v1/manifest.json", raw if use_raw else json.dumps(doc).encode())
    app = create_app(DatasetsSettings(store=store.uri), store=store)
    with TestClient(app) as client:
        for path in ("/v1/datasets", "/v1/datasets/d/versions", "/v1/datasets/d/versions/1",
                     "/v1/datasets/d/versions/latest/data", "/v1/datasets/d/versions/final",
                     "/v1/datasets/d/diff?from=1&to=1"):  # fmt: skip
            r = client.get(path)
            assert r.status_code < 500, (path, r.status_code, r.text[:200])
