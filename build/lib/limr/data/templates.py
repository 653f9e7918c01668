"""Prompt templates: how a raw question becomes the text a model generates from.

LIMR trains Qwen2.5-Math-7B with its chat format and the system prompt below. We render that format
through the tokenizer's own chat template whenever it has one, so the special tokens and newlines are
exactly the model's (hand-written ChatML strings drift from the real template). Tokenizers without a
chat template (base models, a bare tokenizer.json) get the plain template, a short "Question/Answer"
frame that tiny models learn quickly.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

LIMR_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
PLAIN_TEMPLATE = "Question: {question}\nAnswer:"


class Template(StrEnum):
    """Which template renders a prompt."""

    AUTO = "auto"  # the chat template when the tokenizer has one, else plain
    CHAT = "chat"  # the tokenizer's chat template with LIMR's system prompt (Qwen2.5-Math style)
    PLAIN = "plain"  # PLAIN_TEMPLATE, no special tokens


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def chat_messages(question: str, system_prompt: str | None = LIMR_SYSTEM_PROMPT) -> list[dict[str, str]]:
    """The chat messages of one question: LIMR's system prompt, then the question as the user turn."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*messages, {"role": "user", "content": question}]


def render_prompt(
    question: str,
    tokenizer: Any | None = None,
    template: Template | str = Template.AUTO,
    system_prompt: str | None = LIMR_SYSTEM_PROMPT,
) -> str:
    """The text to generate from for `question` (ends where the model's answer begins)."""
    template = Template(template)
    if template is Template.AUTO:
        template = Template.CHAT if tokenizer is not None and has_chat_template(tokenizer) else Template.PLAIN
    if template is Template.PLAIN:
        return PLAIN_TEMPLATE.format(question=question)
    if tokenizer is None or not has_chat_template(tokenizer):
        raise ValueError("template 'chat' needs a tokenizer with a chat template; use 'plain' or 'auto'")
    return tokenizer.apply_chat_template(
        chat_messages(question, system_prompt), tokenize=False, add_generation_prompt=True
    )


def render_prompts(
    questions: list[str],
    tokenizer: Any | None = None,
    template: Template | str = Template.AUTO,
    system_prompt: str | None = LIMR_SYSTEM_PROMPT,
) -> list[str]:
    return [render_prompt(q, tokenizer, template, system_prompt) for q in questions]
