"""Format rules of the LIMR reward: answer extraction and the checks that make a response a format error.

Pure string functions (plus numpy for the repetition scan), no sympy: they are cheap and total, so the
expensive, possibly hanging part (math equivalence) is isolated in `limr.reward.equivalence`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

MAX_BOXES = 5  # this many boxes or more is a format error (the model is hedging)
GARBLED_FRACTION = 0.30  # more than this share of odd characters is garbled text
REPEAT_MIN_CHUNK = 5  # a chunk of at least this many characters ...
REPEAT_MIN_TIMES = 5  # ... repeated this many times in a row is a degenerate loop
REPEAT_MAX_CHUNK = 1000  # longest loop period scanned (bounds the cost on long responses)

_BOX_START = re.compile(r"\\(?:boxed|fbox)\s*\{")
# Unicode categories that count as normal text: letters, digits/numbers, punctuation, separators
# (spaces), math and currency symbols. Everything else (control characters, private use, emoji and
# other symbols, the U+FFFD replacement character of broken UTF-8, stray combining marks) is "odd".
_OK_CATEGORY_PREFIXES = ("L", "N", "P", "Z")
_OK_CATEGORIES = {"Sm", "Sc"}


@dataclass(frozen=True)
class Boxes:
    """The `\\boxed{...}` occurrences of a text."""

    count: int  # number of box openings, complete or not
    last: str | None  # content of the last box, None when it is not closed (or there is none)


def find_boxes(text: str) -> Boxes:
    """Count `\\boxed{` / `\\fbox{` openings and return the content of the last one.

    Braces are matched with escapes honoured, so `\\boxed{\\{1, 2\\}}` yields `\\{1, 2\\}` and
    `\\boxed{\\frac{1}{2}}` yields `\\frac{1}{2}`.
    """
    starts = [m.end() for m in _BOX_START.finditer(text)]
    if not starts:
        return Boxes(0, None)
    return Boxes(len(starts), _balanced(text, starts[-1]))


def _balanced(text: str, start: int) -> str | None:
    """The content from `start` (just after an opening brace) to its matching close, or None."""
    depth, i, n = 1, start, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2  # an escaped character (\{, \}, \\) never opens or closes a group
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
        i += 1
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last complete `\\boxed{...}` in `text`, or None."""
    return find_boxes(text).last


def odd_char_fraction(text: str) -> float:
    """Share of characters that are not letters, digits, whitespace, punctuation or math symbols."""
    if not text:
        return 0.0
    odd = 0
    for ch in text:
        if ch.isascii() and (ch.isprintable() or ch in "\n\t\r"):
            continue
        if ch.isspace():
            continue
        cat = unicodedata.category(ch)
        if cat in _OK_CATEGORIES or cat.startswith(_OK_CATEGORY_PREFIXES):
            continue
        odd += 1
    return odd / len(text)


def is_garbled(text: str) -> bool:
    return odd_char_fraction(text) > GARBLED_FRACTION


def has_repetition(
    text: str, min_chunk: int = REPEAT_MIN_CHUNK, min_times: int = REPEAT_MIN_TIMES, max_chunk: int = REPEAT_MAX_CHUNK
) -> bool:
    """True when some chunk of >= `min_chunk` characters occurs >= `min_times` times back to back.

    A chunk of length p repeated k times in a row is exactly a stretch where text[j] == text[j + p] for
    (k - 1) * p consecutive j; scanning each period p with numpy costs O(len * periods) without the
    quadratic backtracking of the equivalent regex `(.{5,}?)\\1{4,}`.
    """
    n = len(text)
    if n < min_chunk * min_times:
        return False
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    for p in range(min_chunk, min(max_chunk, n // min_times) + 1):
        need = (min_times - 1) * p
        eq = codes[:-p] == codes[p:]
        if eq.sum() < need:
            continue
        # longest run of True in eq
        padded = np.concatenate(([False], eq, [False]))
        edges = np.flatnonzero(padded[1:] != padded[:-1])
        if edges.size and int((edges[1::2] - edges[::2]).max()) >= need:
            return True
    return False
