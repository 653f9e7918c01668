"""The OpenAI door refuses every invalid request with an OpenAI-shaped 400 before it reaches the engine, and no
request escapes the service's token limit. Hypothesis fuzzes request bodies against vLLM's own request models
(no engine needed: `parse_request` is the door's edge)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("vllm")

from limr.rollout.config import RequestLimits  # noqa: E402
from limr.rollout.openai_api import parse_request  # noqa: E402

LIMITS = RequestLimits(max_tokens=64)
MESSAGES = [{"role": "user", "content": "12+7?"}]


def _error(result) -> dict | None:  # noqa: ANN001
    from vllm.entrypoints.serve.engine.protocol import ErrorResponse

    return result.model_dump()["error"] if isinstance(result, ErrorResponse) else None


@pytest.mark.parametrize(
    ("kind", "body", "param"),
    [
        ("completions", {"model": "m", "prompt": "x", "n": -1}, "n"),
        ("completions", {"model": "m"}, None),  # no prompt
        ("completions", {"model": "m", "prompt": []}, "prompt"),
        ("completions", {"model": "m", "prompt": "x", "max_tokens": 1.5}, "max_tokens"),
        ("completions", {"model": "m", "prompt": "x", "max_tokens": "ten"}, "max_tokens"),
        ("completions", {"model": "m", "prompt": "x", "max_tokens": -3}, "max_tokens"),
        ("chat", {"model": "m", "messages": MESSAGES, "n": 0}, "n"),
        ("chat", {"model": "m", "messages": MESSAGES, "max_completion_tokens": 0}, "max_completion_tokens"),
    ],
)
def test_invalid_requests_get_an_openai_400(kind: str, body: dict, param: str | None) -> None:
    error = _error(parse_request(kind, json.dumps(body).encode(), LIMITS))
    assert error is not None and error["code"] == 400 and error["type"] == "BadRequestError"
    if param:
        assert param in error["message"]


def test_a_null_max_tokens_gets_the_service_limit() -> None:
    chat = parse_request("chat", json.dumps({"model": "m", "messages": MESSAGES, "max_tokens": None}).encode(), LIMITS)
    assert chat.max_completion_tokens == 64  # vLLM would otherwise generate up to the context length
    done = parse_request("completions", json.dumps({"model": "m", "prompt": "x", "max_tokens": None}).encode(), LIMITS)
    assert 1 <= done.max_tokens <= 64  # vLLM's completion model turns a null into its default (16)


_value = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=8),
    st.lists(st.integers(-5, 5), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)  # fmt: skip
_fields = ["model", "prompt", "messages", "n", "max_tokens", "max_completion_tokens", "temperature", "top_p",
           "logprobs", "stop", "stream", "echo", "seed", "best_of", "top_k"]  # fmt: skip


@given(
    kind=st.sampled_from(["completions", "chat"]),
    body=st.dictionaries(st.sampled_from(_fields), _value, max_size=6),
    valid_base=st.booleans(),
)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_fuzzed_bodies_parse_or_get_a_400(kind: str, body: dict, valid_base: bool) -> None:
    """Whatever the body, the door answers a parsed request or a 400 (never an exception, i.e. never a 500),
    and a parsed request has n >= 1 and a positive token bound."""
    if valid_base:
        base = {"model": "m", "messages": MESSAGES} if kind == "chat" else {"model": "m", "prompt": "x"}
        body = base | body
    result = parse_request(kind, json.dumps(body).encode(), LIMITS)
    error = _error(result)
    if error is not None:
        assert error["code"] == 400 and error["message"]
        return
    assert result.n is None or result.n >= 1
    bound = result.max_completion_tokens or result.max_tokens if kind == "chat" else result.max_tokens
    assert bound is not None and bound >= 1
