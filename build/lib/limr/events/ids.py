"""Stable prompt ids: a record's own `id` when it has one, else a hash of the stripped prompt text."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any


def prompt_hash_id(prompt: str) -> str:
    """Id of a prompt without one: the first 16 hex digits of sha256 of the stripped text.

    Stripping makes dumps that differ only in leading/trailing whitespace (chat templates add some)
    map to the same prompt.
    """
    return hashlib.sha256(prompt.strip().encode("utf-8")).hexdigest()[:16]


def prompt_id_of(record: Mapping[str, Any], prompt: str) -> str:
    """The stable id of a prompt record."""
    rid = record.get("id")
    if rid is not None and str(rid).strip():
        return str(rid)
    return prompt_hash_id(prompt)


def prompt_text(value: Any) -> str:
    """A prompt as text: a string as is; a chat (a list of {role, content} messages, as in verl's RL parquet
    and TRL's conversational datasets) as the content of its last user message."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(m, Mapping) for m in value):
        users = [m for m in value if m.get("role") == "user"] or list(value)
        content = users[-1].get("content")
        if isinstance(content, str):
            return content
    raise ValueError(f"a prompt must be a string or a list of chat messages, got {type(value).__name__}")
