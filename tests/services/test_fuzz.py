"""The query API fuzzed from its own OpenAPI spec (schemathesis): no input makes it answer 5xx."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from limr.curation.policy import PublishPolicy
from limr.store import open_store
from services.datasets.config import DatasetsSettings
from services.datasets.main import create_app
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor

TOKEN = "fuzz-token"


@pytest.fixture
def api_schema(s3_uri, run_writer):
    store = open_store(s3_uri)
    run_writer(store, "fz", prompts=10, epochs=2, steps_per_epoch=1).write_all()
    run_writer(store, "unscored", prompts=4, epochs=1).start()  # a run without events: 409s, not 500s
    policies = (PublishPolicy(name="{run}-lim", threshold=0.5), PublishPolicy(name="{run}-top", top_k=3))
    Ingestor(store, ScorerSettings(store=s3_uri, policies=policies, notifications="off")).poll_once()
    app = create_app(DatasetsSettings(store=s3_uri, api_token=TOKEN, max_page_size=20), store=store)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


KNOWN = {"run_id": "fz", "name": "fz-lim", "version": "1", "prompt_id": "p0003"}


def test_no_server_errors(api_schema):
    """Every operation fuzzed three ways: random valid inputs, valid inputs pinned to the existing run and
    dataset (so queries reach real data), and schema-violating inputs. Every other case is authenticated
    (the write path runs for real); the rest exercise the auth paths (401/403, never 5xx)."""
    statuses: Counter[tuple[str, int]] = Counter()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        names = {p.name for p in operation.path_parameters}
        pinned = {k: v for k, v in KNOWN.items() if k in names}
        strategies = [(operation.as_strategy(), False), (operation.as_strategy(GenerationMode.NEGATIVE), True)]
        if pinned:
            strategies.append((operation.as_strategy(path_parameters=pinned), False))
        for strategy, negative in strategies:

            @given(case=strategy)
            @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case):
                auth = sum(statuses.values()) % 2 == 0
                headers = {"Authorization": f"Bearer {TOKEN}"} if auth else None
                response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
                statuses[(case.operation.label, response.status_code)] += 1

            try:
                check()
            except Unsatisfiable:
                assert negative  # an operation without inputs has no invalid input
    assert not [k for k in statuses if k[1] >= 500]
    # The fuzzing reached real data and real rejections, not only 404s.
    codes = {code for _, code in statuses}
    assert {200, 401, 404, 422} <= codes, statuses
    assert (
        statuses[("GET /v1/runs/{run_id}/scores", 200)] > 0
        and statuses[("POST /v1/datasets/{name}/versions", 401)] > 0
    )


CONFIGS = {
    "both-tokens": {"api_token": TOKEN, "read_token": "read-token"},  # reads need a token too
    "default": {},  # `limr serve datasets` with no token: reads open, writes refused (403)
    "writes-only": {"api_token": TOKEN},  # reads open, writes with the token (the chart without an Ingress)
}


@pytest.fixture(params=sorted(CONFIGS))
def strict_schema(request, tmp_path, run_writer):
    """A deployment in each configuration (the spec must tell the truth in every one), local store."""
    from limr.store import LocalStore

    store = LocalStore(tmp_path / "store")
    w = run_writer(store, "fz", prompts=10, epochs=2, steps_per_epoch=1)
    w.write_all()
    Ingestor(
        store, ScorerSettings(store=store.uri, policies=(PublishPolicy(name="{run}-lim", threshold=0.5),))
    ).poll_once()
    w.finish()  # a final version too, so `final` resolves
    Ingestor(
        store, ScorerSettings(store=store.uri, policies=(PublishPolicy(name="{run}-lim", threshold=0.5),))
    ).poll_once()
    settings_ = DatasetsSettings(store=store.uri, max_page_size=20, **CONFIGS[request.param])
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(settings_, store=store))


def _auth_unless_removed(case) -> dict[str, str]:
    """The write token on every case, except a negative case that left the Authorization header out on purpose."""
    headers = dict(case.headers or {})
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    if "Authorization" in headers or not negative:
        headers["Authorization"] = f"Bearer {TOKEN}"
    return headers


def test_every_check_per_operation(strict_schema):
    """schemathesis' full check set (`--checks all`: server errors, status codes, content types, response
    schemas and headers, positive/negative data, ignored auth, ...) on every operation, valid and invalid."""
    failures: list[str] = []
    for result in strict_schema.get_all_operations():
        operation = result.ok()
        pinned = {k: v for k, v in KNOWN.items() if k in {p.name for p in operation.path_parameters}}
        strategies = [operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE)]
        if pinned:
            strategies.append(operation.as_strategy(path_parameters=pinned))
        for strategy in strategies:

            @given(case=strategy)
            @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case):
                try:
                    case.call_and_validate(headers=_auth_unless_removed(case))
                except BaseException as e:  # noqa: BLE001 - collect every failure, report them all at once
                    failures.extend(
                        f"{case.operation.label}: {x}".splitlines()[0] for x in getattr(e, "exceptions", [e])
                    )

            try:
                check()
            except Unsatisfiable:  # only invalid inputs can be impossible: an operation without inputs has none
                assert strategy is strategies[1], f"{operation.label}: no valid case could be generated"
    assert not failures, "\n".join(sorted(set(failures)))


def test_stateful_workflows(strict_schema):
    """Stateful mode: schemathesis chains operations through the links it infers (list runs -> a run's scores
    -> a prompt; datasets -> versions -> data...), every check on every step."""
    base = strict_schema.as_state_machine()

    class Workflow(base):
        def get_call_kwargs(self, case):
            return {"headers": _auth_unless_removed(case)}

    Workflow.run(
        settings=settings(
            max_examples=25,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
    )
