"""The rollout service's OpenAI door, driven by real clients: the official `openai` package and
lm-evaluation-harness's `local-completions` model. Shares the session's rollout deployment (tests/rollout/conftest.py).

Greedy requests are compared with each other (stream vs whole, stop vs no stop) and with transformers (logprobs,
chat-template token counts); both replicas serve checkpoint A, so any replica gives the same greedy text.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.rollout.conftest import hf_token_logprobs

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.vllm]
PROMPT = "12+7="
CHAT = [{"role": "system", "content": "Add."}, {"role": "user", "content": "12+7?"}]
GREEDY = {"temperature": 0, "extra_body": {"ignore_eos": True}}


@pytest.fixture(scope="module")
def base_url(rollout_service) -> str:  # noqa: ANN001
    return rollout_service.http_client.base_url


@pytest.fixture(scope="module")
def client(base_url: str):  # noqa: ANN201
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def model(client) -> str:  # noqa: ANN001
    (card,) = client.models.list().data
    return card.id


@pytest.fixture(scope="module")
def tokenizer(tiny_ckpts: tuple[Path, Path]):  # noqa: ANN201
    import transformers

    return transformers.AutoTokenizer.from_pretrained(tiny_ckpts[0])


def test_completions_logprobs_echo_and_weight_version(client, model, tokenizer, tiny_ckpts, rollout_service) -> None:  # noqa: ANN001
    ids_please = {"ignore_eos": True, "return_token_ids": True, "return_tokens_as_token_ids": True}  # vLLM's
    raw = client.completions.with_raw_response.create(
        model=model, prompt=PROMPT, max_tokens=6, logprobs=2, temperature=0, extra_body=ids_please
    )
    assert int(raw.headers["x-limr-weight-version"]) == rollout_service.http_client.weight_version()
    choice = raw.parse().choices[0]
    lp = choice.logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 6 and choice.finish_reason == "length"
    # Greedy: every sampled token is the best of its position's top-2 alternatives (keyed "token_id:N").
    for t, top in zip(lp.token_logprobs, lp.top_logprobs, strict=True):
        assert len(top) >= 2 and t == pytest.approx(max(top.values()), abs=1e-6)
    prompt_ids = tokenizer(PROMPT).input_ids
    ref = hf_token_logprobs(tiny_ckpts[0], prompt_ids, list(choice.token_ids))
    assert max(abs(a - b) for a, b in zip(ref, lp.token_logprobs, strict=True)) < 1e-3

    echoed = client.completions.create(model=model, prompt=PROMPT, max_tokens=6, logprobs=0, echo=True, **GREEDY)
    e = echoed.choices[0]
    assert e.text == PROMPT + choice.text and e.logprobs.token_logprobs[0] is None  # no logprob for token 0
    assert len(e.logprobs.token_logprobs) == len(prompt_ids) + 6
    assert e.logprobs.token_logprobs[len(prompt_ids) :] == pytest.approx(lp.token_logprobs, abs=1e-5)


def test_completions_stop_and_stream(client, model) -> None:  # noqa: ANN001
    full = client.completions.create(model=model, prompt=PROMPT, max_tokens=12, **GREEDY).choices[0].text
    cut = next(i for i, ch in enumerate(full) if i > 0 and ch.isascii() and ch.isalnum())
    stopped = client.completions.create(model=model, prompt=PROMPT, max_tokens=12, stop=[full[cut]], **GREEDY)
    assert stopped.choices[0].finish_reason == "stop" and full.startswith(stopped.choices[0].text)
    assert full[cut] not in stopped.choices[0].text

    chunks = list(client.completions.create(model=model, prompt=PROMPT, max_tokens=12, stream=True, **GREEDY))
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert len(texts) > 1, "a stream arrives in several events"
    assert "".join(texts) == full and chunks[-1].choices[0].finish_reason == "length"


def test_chat_uses_the_model_template_and_streams(client, model, tokenizer) -> None:  # noqa: ANN001
    whole = client.chat.completions.create(model=model, messages=CHAT, max_tokens=8, **GREEDY)
    msg = whole.choices[0].message
    assert msg.role == "assistant" and whole.choices[0].finish_reason == "length"
    rendered = tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>assistant" in rendered  # the tiny model's template (Qwen's format)
    assert whole.usage.prompt_tokens == len(tokenizer(rendered, add_special_tokens=False).input_ids)

    stream = client.chat.completions.create(model=model, messages=CHAT, max_tokens=8, stream=True, **GREEDY)
    deltas = [c.choices[0].delta for c in stream if c.choices]
    assert deltas[0].role == "assistant" and "".join(d.content or "" for d in deltas) == msg.content


def test_errors_have_openai_shape(client, model, base_url) -> None:  # noqa: ANN001
    import openai

    with pytest.raises(openai.BadRequestError) as bad:
        client.completions.create(model=model, prompt=PROMPT, max_tokens=10_000)  # > the service's limit
    assert bad.value.status_code == 400 and "max_tokens" in bad.value.message
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="not-served", messages=CHAT, max_tokens=2)
    with httpx.Client(base_url=base_url, timeout=30) as c:
        r = c.post("/v1/completions", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and set(r.json()["error"]) >= {"message", "type", "code"}
        doc = c.get("/openapi.json").json()
    for path in ("/v1/completions", "/v1/chat/completions"):  # the document tells what the routes accept and answer
        op = doc["paths"][path]["post"]
        assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].startswith("#/components/schemas/")
        assert "422" not in op["responses"] and {"200", "400", "404"} <= set(op["responses"])
    weights = doc["paths"]["/v1/weights"]["post"]
    assert weights["security"] == [{"HTTPBearer": []}] and {"401", "403"} <= set(weights["responses"])


def test_lm_eval_local_completions(base_url, model, tiny_ckpts, tmp_path) -> None:  # noqa: ANN001
    """lm-evaluation-harness scores a local multiple-choice task through /v1/completions (echo + logprobs); its
    log-likelihoods must be transformers' for the same tokens."""
    lm_eval = pytest.importorskip("lm_eval")
    import transformers
    from lm_eval.tasks import TaskManager

    docs = [
        {"question": "12+7=", "choices": [" 19", " 21", " 5"], "label": 0},
        {"question": "The cat", "choices": [" sat", " ran away"], "label": 1},
    ]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (tmp_path / "limr_tiny_mc.yaml").write_text(
        "task: limr_tiny_mc\n"
        "dataset_path: json\n"
        f"dataset_kwargs: {{data_files: {{test: {tmp_path / 'docs.jsonl'}}}}}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        "doc_to_text: question\n"
        "doc_to_choice: choices\n"
        "doc_to_target: label\n"
        "target_delimiter: ''\n"  # the choices carry their leading space
        "metric_list: [{metric: acc}]\n"
    )
    out = lm_eval.simple_evaluate(
        model="local-completions",
        model_args={
            "base_url": f"{base_url}/v1/completions",
            "model": model,
            "tokenizer_backend": "huggingface",
            "tokenizer": str(tiny_ckpts[0]),
            "max_retries": 1,
        },
        tasks=["limr_tiny_mc"],
        task_manager=TaskManager(include_path=str(tmp_path)),
        log_samples=True,
    )
    assert 0.0 <= out["results"]["limr_tiny_mc"]["acc,none"] <= 1.0
    tok = transformers.AutoTokenizer.from_pretrained(tiny_ckpts[0])
    samples = sorted(out["samples"]["limr_tiny_mc"], key=lambda s: s["doc_id"])
    assert len(samples) == len(docs)
    for sample, doc in zip(samples, docs, strict=True):
        ctx = tok(doc["question"], add_special_tokens=False).input_ids
        for (loglik, _greedy), choice in zip((r[0] for r in sample["resps"]), doc["choices"], strict=True):
            whole = tok(doc["question"] + choice, add_special_tokens=False).input_ids
            assert whole[: len(ctx)] == ctx  # the continuation's tokens are the tail of the whole text's
            ref = sum(hf_token_logprobs(tiny_ckpts[0], ctx, whole[len(ctx) :]))
            assert loglik == pytest.approx(ref, abs=5e-3), (doc["question"], choice)
