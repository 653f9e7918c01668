"""Prompt templates: the tokenizer's own chat template with LIMR's system prompt, or the plain frame."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from limr.data.templates import (  # noqa: E402
    LIMR_SYSTEM_PROMPT,
    PLAIN_TEMPLATE,
    Template,
    chat_messages,
    render_prompt,
    render_prompts,
)
from limr.model.tiny import build_tokenizer  # noqa: E402

# A Qwen2.5-style template (written for this test): ChatML turns, and a default system turn when the
# conversation has none. Rendering must go through it, not through a hand-written ChatML string.
QWEN_LIKE = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture
def qwen_like():
    tok = build_tokenizer()
    tok.chat_template = QWEN_LIKE
    return tok


def test_chat_template_carries_limr_system_prompt(qwen_like) -> None:
    text = render_prompt("What is 1+1?", qwen_like)
    assert text == (
        f"<|im_start|>system\n{LIMR_SYSTEM_PROMPT}<|im_end|>\n"
        "<|im_start|>user\nWhat is 1+1?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert LIMR_SYSTEM_PROMPT == "Please reason step by step, and put your final answer within \\boxed{}."
    # no system prompt: the model's template supplies its own default
    assert "You are a helpful assistant." in render_prompt("q", qwen_like, system_prompt=None)


def test_auto_falls_back_to_plain_without_chat_template() -> None:
    tok = build_tokenizer()
    tok.chat_template = None
    assert render_prompt("What is 1+1?", tok) == PLAIN_TEMPLATE.format(question="What is 1+1?")
    assert render_prompt("What is 1+1?") == "Question: What is 1+1?\nAnswer:"
    assert render_prompt("q", build_tokenizer(), template="plain") == "Question: q\nAnswer:"
    with pytest.raises(ValueError, match="chat template"):
        render_prompt("q", tok, template=Template.CHAT)
    with pytest.raises(ValueError):
        render_prompt("q", tok, template="fancy")


def test_tiny_tokenizer_renders_through_its_chat_template() -> None:
    tok = build_tokenizer()
    out = render_prompts(["a", "b"], tok)
    assert out[0].startswith("<|im_start|>system\nPlease reason") and out[1].endswith("<|im_start|>assistant\n")
    assert chat_messages("q", None) == [{"role": "user", "content": "q"}]
