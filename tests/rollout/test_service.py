"""The rollout service end to end: real vLLM CPU engine behind real Ray Serve on a local Ray cluster.

One deployment per module (engine start is the cost); tests that change weights put checkpoint A back.
Logprob tolerance: |vLLM - transformers| <= 0.02 nats per token (float32 on both sides; the CPU kernels sum in
a different order, we measured max ~4e-3 on these sharpened tiny models).
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from limr.rollout.types import InvalidRequest, SamplingSpec
from tests.conftest import unique_name
from tests.rollout.conftest import GREEDY_TOKENS, PROMPTS, hf_greedy, hf_token_logprobs

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.vllm]
LOGPROB_ATOL = 0.02
ADMIN = "s3cret-admin"
GREEDY = SamplingSpec(n=1, temperature=0.0, max_tokens=GREEDY_TOKENS, ignore_eos=True)


@pytest.fixture(scope="module")
def refs(tiny_ckpts: tuple[Path, Path]) -> dict[str, list[list[int]]]:
    a, b = tiny_ckpts
    ra, rb = hf_greedy(a, PROMPTS), hf_greedy(b, PROMPTS)
    assert ra != rb and any(len(set(x)) > 3 for x in ra + rb), "checkpoints must have distinct, varied greedy output"
    return {"A": ra, "B": rb}


@pytest.fixture(scope="module")
def service(ray_session, s3_server, tiny_ckpts):  # noqa: ANN001
    pytest.importorskip("vllm")
    from limr.rollout.client import deploy_local
    from limr.rollout.config import EngineConfig, RequestLimits, RolloutArgs

    args = RolloutArgs(
        engine=EngineConfig(model=str(tiny_ckpts[0]), max_model_len=256, kv_cache_gib=0.5, dtype="float32"),
        limits=RequestLimits(max_prompts=32, max_n=16, max_tokens=128, max_samples=256),
        admin_token=ADMIN,
        num_cpus=0.5,
        env_vars={**s3_server.env(), "VLLM_CPU_KVCACHE_SPACE": "1", "TOKENIZERS_PARALLELISM": "false"},
        weight_sync_interval_s=0.5,
    )
    name = unique_name("rollout")
    dep = deploy_local(args, name=name, route_prefix=f"/{name}", timeout_s=120)
    yield dep
    dep.shutdown()


def greedy_of(client, prompts=PROMPTS):  # noqa: ANN001, ANN201
    res = client.generate(prompts, GREEDY)
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
    # Length-truncated samples are recognisable: ignore_eos + max_tokens forces "length".
    res = service.http_client.generate([[5, 6, 7]], SamplingSpec(n=2, max_tokens=3, ignore_eos=True, seed=1))
    assert all(s.finish_reason == "length" and len(s.token_ids) == 3 for s in res.results[0].samples)
    assert res.results[0].prompt_token_ids == [5, 6, 7]


def test_logprobs_match_transformers(service, tiny_ckpts) -> None:  # noqa: ANN001
    ckpt = tiny_ckpts[0]
    greedy = service.http_client.generate(PROMPTS, SamplingSpec(temperature=0.0, max_tokens=20))
    sampled = service.handle_client.generate(PROMPTS, SamplingSpec(n=3, temperature=1.0, top_p=1.0, max_tokens=20, seed=7))
    worst = 0.0
    for res in (greedy, sampled):
        for r in res.results:
            for s in r.samples:
                ref = hf_token_logprobs(ckpt, r.prompt_token_ids, s.token_ids)
                worst = max(worst, max(abs(a - b) for a, b in zip(ref, s.logprobs, strict=True)))
    assert worst <= LOGPROB_ATOL, worst
    # Greedy tokens are the argmax, so their logprob is the highest of the position: sanity on magnitude.
    assert all(lp <= 0 for r in greedy.results for lp in r.samples[0].logprobs)
