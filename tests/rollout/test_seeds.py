"""Per-request seeds: every (request, prompt, sample) of a step gets its own vLLM random stream."""

from __future__ import annotations

from limr.learner.generator import Sampling
from limr.learner.generator.service import ServiceGenerator
from limr.rollout.engine import prompt_seed


def test_prompt_and_sample_streams_never_collide() -> None:
    n, prompts = 8, 64
    # vLLM seeds sample k of a prompt with seed + k: the streams of all samples of a request are distinct
    streams = [prompt_seed(1234, i, n) + k for i in range(prompts) for k in range(n)]
    assert len(set(streams)) == n * prompts
    # and differ between requests (other chunks of a step, other steps, other ranks)
    other = {prompt_seed(1235, i, n) + k for i in range(prompts) for k in range(n)}
    assert not other & set(streams)


def test_service_requests_carry_seeds_per_chunk() -> None:
    sampling = Sampling(n=4, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=77)
    a, b = ServiceGenerator._spec(sampling, 0), ServiceGenerator._spec(sampling, 16)
    assert a.seed is not None and b.seed is not None and a.seed != b.seed
    assert ServiceGenerator._spec(sampling, 16) == b  # a function of (step seed, chunk) only
    unseeded = Sampling(n=4, temperature=1.0, top_p=1.0, max_new_tokens=8)
    assert ServiceGenerator._spec(unseeded, 0).seed is None
