"""Fixtures of the rollout tests: two tiny checkpoints with decisive greedy outputs, and their references."""

from __future__ import annotations

from pathlib import Path

import pytest

PROMPTS = ["12+7=", "The cat", "Q: 3*4? A:"]  # for sampling tests
# Candidates for exact greedy comparisons; the `refs` fixture keeps the decisive ones.
GREEDY_CANDIDATES = [f"{i}+{2 * i + 1}=" for i in range(30)]
MIN_MARGIN = 0.03  # nats; in float32 the engine's logprobs differ from transformers' by < 1e-4
GREEDY_TOKENS = 16
ADMIN = "s3cret-admin"  # the admin token of the shared rollout service (POST /v1/weights)


def _sharp_tiny(root: Path, seed: int) -> Path:
    """A tiny model whose weights are redrawn with std 0.3: fresh models (std 0.02) have near-flat logits, so
    greedy decoding would repeat one token and logprob checks would compare near-constants."""
    import torch
    import transformers

    from limr.model.tiny import init_tiny_model

    base = init_tiny_model(root / f"base{seed}", seed=seed)
    model = transformers.AutoModelForCausalLM.from_pretrained(base)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    out = root / f"sharp{seed}"
    model.save_pretrained(out)
    transformers.AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_ckpts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("rollout-models")
    return _sharp_tiny(root, 1), _sharp_tiny(root, 2)


def hf_greedy(
    model_dir: Path, prompts: list[str], max_new_tokens: int = GREEDY_TOKENS
) -> list[tuple[list[int], float]]:
    """transformers' greedy continuations (exactly max_new_tokens each) and, per prompt, the smallest gap
    between the best and second-best logprob along the way: a near-tie could flip under the engine's
    slightly different float arithmetic, so exact-match tests use only decisive prompts."""
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    out = []
    for p in prompts:
        ids = tok(p, return_tensors="pt").input_ids
        gen = model.generate(
            ids,
            max_new_tokens=max_new_tokens,
            min_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=0,
            output_logits=True,
            return_dict_in_generate=True,
        )
        margin = min(float(torch.topk(torch.log_softmax(lg[0], -1), 2).values.diff().abs()) for lg in gen.logits)
        out.append((gen.sequences[0, ids.shape[1] :].tolist(), margin))
    return out


def hf_token_logprobs(model_dir: Path, prompt_ids: list[int], completion: list[int]) -> list[float]:
    """log p(completion[t] | prompt, completion[:t]) under transformers (log-softmax of raw logits)."""
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ids = torch.tensor([prompt_ids + completion])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), dim=-1)  # (T, V)
    pos = torch.arange(len(prompt_ids) - 1, len(prompt_ids) + len(completion) - 1)
    return logp[pos, torch.tensor(completion)].tolist()


@pytest.fixture(scope="package")
def rollout_service(ray_session, s3_server, tiny_ckpts):  # noqa: ANN001, ANN201
    """One rollout deployment (2 replicas of checkpoint A) for the service tests of tests/rollout (test_openai.py,
    test_service.py): engine starts are the cost. It goes when the package's tests end, so later tests get the
    Ray CPUs back. Tests that change weights put checkpoint A back."""
    pytest.importorskip("vllm")
    from limr.rollout.client import deploy_local
    from limr.rollout.config import EngineConfig, RequestLimits, RolloutArgs
    from tests.conftest import unique_name

    args = RolloutArgs(
        engine=EngineConfig(model=str(tiny_ckpts[0]), max_model_len=256, kv_cache_gib=0.5),  # dtype auto: float32
        limits=RequestLimits(max_prompts=32, max_n=16, max_tokens=128, max_samples=256),
        admin_token=ADMIN,
        num_cpus=0.5,
        num_replicas=2,  # every test also exercises cross-replica weight sync (limr.rollout.sync)
        env_vars={**s3_server.env(), "TOKENIZERS_PARALLELISM": "false"},
        weight_sync_interval_s=0.5,
    )
    name = unique_name("rollout")
    dep = deploy_local(args, name=name, route_prefix=f"/{name}", timeout_s=120)
    yield dep
    dep.shutdown()
