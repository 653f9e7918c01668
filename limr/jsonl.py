"""Reading JSON Lines with errors that name the file (or URL) and the line: one reader for every JSONL input
(prompt pools, trainer dumps, dataset versions fetched from the API); each caller turns `JsonlError` into its
own error type."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


class JsonlError(ValueError):
    """A line that is not JSON (or not an object where objects are required), or input that is not UTF-8."""


def jsonl_records(lines: Iterable[str], where: str, *, objects: bool = True) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line of `lines` (an open text file or a list of strings).
    `objects`: every value must be a JSON object. Errors read "`where`: line N: ..."."""
    try:
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise JsonlError(f"{where}: line {lineno}: invalid JSON at column {e.colno}: {e.msg}") from None
            if objects and not isinstance(rec, dict):
                raise JsonlError(f"{where}: line {lineno}: expected an object, got {type(rec).__name__}")
            yield lineno, rec
    except UnicodeDecodeError as e:
        raise JsonlError(f"{where}: not UTF-8 text ({e.reason})") from None
