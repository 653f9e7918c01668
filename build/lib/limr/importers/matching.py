"""Map the prompts a trainer dumped back to the pool's prompt ids.

Dumps carry no prompt id, and most carry the prompt as the model saw it: verl decodes the prompt tokens after
the chat template (`system\\n...\\nuser\\n{prompt}\\nassistant\\n` once special tokens are skipped), AReaL
keeps the special tokens, NeMo-RL logs the templated message. A dumped text maps to a pool prompt when:

1. its stripped text is a pool prompt (OpenRLHF, TRL), else
2. it is `prefix + prompt + suffix` for a wrapper learned from an earlier text (the template is the same for
   every prompt, so after the first match this is one dictionary lookup), else
3. exactly one pool prompt is the longest pool prompt contained in it (a scan; its wrapper is then learned).

A text that matches no pool prompt, or two different ones equally well, is unmapped: the importer skips its
samples and reports how many and which. Results are cached per distinct text, so memory grows with the
distinct prompts of the run, not with its samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from limr.events.ids import prompt_hash_id
from limr.events.io import PromptRecord

#: Wrappers kept: a run has one template (a few with several data sources).
MAX_WRAPPERS = 16
#: Unmapped texts shown in reports.
EXAMPLES = 5


@dataclass
class MatchReport:
    """What could not be mapped, for the import summary."""

    unmapped_samples: int = 0
    unmapped_prompts: int = 0
    ambiguous_prompts: int = 0
    examples: list[str] = field(default_factory=list)

    def describe(self) -> str:
        shown = "; ".join(repr(e[:80]) for e in self.examples)
        return (
            f"{self.unmapped_samples} sample(s) of {self.unmapped_prompts} dumped prompt(s) not found in the pool"
            f" ({self.ambiguous_prompts} ambiguous), e.g. {shown}"
        )


class PromptMatcher:
    """Dumped prompt text -> pool prompt id (or, without a pool, the hash of the stripped text)."""

    def __init__(self, records: Sequence[PromptRecord] | None) -> None:
        self.records = records
        self.by_text: dict[str, str] = {}
        if records is not None:
            for rec in records:
                self.by_text.setdefault(rec.prompt.strip(), rec.prompt_id)
        # Longest first: the scan then finds the longest contained prompt first.
        self._texts = sorted(self.by_text, key=len, reverse=True)
        self._wrappers: list[tuple[str, str]] = []
        self._cache: dict[str, str | None] = {}
        self.report = MatchReport()
        self.seen: dict[str, str] = {}  # id -> stripped text of every prompt met (the run's prompts without a pool)

    def id_of(self, text: str) -> str | None:
        """The pool id of a dumped prompt, None when it cannot be mapped (counted in `report`)."""
        pid = self._cache.get(text, "")
        if pid == "":
            pid = self._match(text)
            self._cache[text] = pid
            if pid is None:
                self.report.unmapped_prompts += 1
                if len(self.report.examples) < EXAMPLES:
                    self.report.examples.append(text.strip())
        if pid is None:
            self.report.unmapped_samples += 1
        else:
            self.seen.setdefault(pid, text.strip())
        return pid

    def ids_of(self, texts: Sequence[str]) -> list[str | None]:
        return [self.id_of(t) for t in texts]

    def _match(self, text: str) -> str | None:
        stripped = text.strip()
        if self.records is None:
            return prompt_hash_id(stripped)
        exact = self.by_text.get(stripped)
        if exact is not None:
            return exact
        for pre, suf in self._wrappers:
            if len(stripped) >= len(pre) + len(suf) and stripped.startswith(pre) and stripped.endswith(suf):
                inner = stripped[len(pre) : len(stripped) - len(suf)].strip()
                if inner in self.by_text:
                    return self.by_text[inner]
        return self._scan(stripped)

    def _scan(self, stripped: str) -> str | None:
        best: str | None = None
        for candidate in self._texts:
            if best is not None and len(candidate) < len(best):
                break
            if candidate and candidate in stripped:
                if best is not None and self.by_text[candidate] != self.by_text[best]:
                    self.report.ambiguous_prompts += 1
                    return None
                best = candidate
        if best is None:
            return None
        at = stripped.find(best)
        wrapper = (stripped[:at], stripped[at + len(best) :])
        if wrapper not in self._wrappers and len(self._wrappers) < MAX_WRAPPERS:
            self._wrappers.append(wrapper)
        return self.by_text[best]
