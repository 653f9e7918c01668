"""Benchmarks and the evaluation protocols: how each benchmark is sampled and how answers are checked.

`paper` (the default) is the released LIMR evaluation (GAIR-NLP/LIMR eval/eval.py and eval/config.json,
line by line in docs/fidelity.md): MATH500 greedy, AIME24 / AMC23 four samples per question at temperature
0.4, all with top_p 0.95 and at most 3,072 new tokens; a sample is correct when the content of its last
`\\boxed{}` is equivalent to the gold answer, whether or not the generation finished. `reward` samples every
benchmark greedily and checks answers with the training reward's rules (format errors and unfinished
generations count as wrong), which is what the learner's held-out accuracy measures.

Benchmark files are JSONL with a question and an answer per line (`question`/`prompt`/`problem`,
`answer`/`solution`; a solution's last `\\boxed{}` is its answer), named `<benchmark>.jsonl` in a data
directory. `synthetic` is the held-out split of `limr.tasks.synthetic` unless the directory has a
`synthetic.jsonl`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from limr.data.pool import ANSWER_FIELDS, PROMPT_FIELDS, PoolError, read_rows
from limr.events.ids import prompt_id_of
from limr.reward import normalize_gold
from limr.tasks.synthetic import SyntheticConfig, make_splits


class BenchmarkError(ValueError):
    """A benchmark that cannot be loaded; the message names the file and line."""


PAPER_MAX_TOKENS = 3072  # eval/eval.py:55 (max_tokens=3072)


@dataclass(frozen=True)
class Protocol:
    """How a benchmark is sampled and how its answers are checked."""

    n: int = 1  # samples per question
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    max_tokens: int = PAPER_MAX_TOKENS  # new tokens per sample (capped by what the model's context leaves)
    # last_box: the last \boxed{} is checked for equivalence, nothing else (the released eval.py);
    # reward: the training reward's rules, a format error or an unfinished generation is wrong
    answer_check: Literal["last_box", "reward"] = "reward"


_PAPER_GREEDY = Protocol(n=1, temperature=0.0, top_p=0.95, answer_check="last_box")
_PAPER_SAMPLED = Protocol(n=4, temperature=0.4, top_p=0.95, answer_check="last_box")
PROTOCOL_SETS: dict[str, dict[str, Protocol]] = {
    # eval/config.json:2-13 (n, temperature), eval/eval.py:55 (top_p, max_tokens), eval.py:32-37 (checking);
    # benchmarks the reference does not have get its greedy setting (key "*").
    "paper": {"math500": _PAPER_GREEDY, "aime24": _PAPER_SAMPLED, "amc23": _PAPER_SAMPLED, "*": _PAPER_GREEDY},
    "reward": {"*": Protocol(n=1, temperature=0.0, top_p=1.0, answer_check="reward")},
}
DEFAULT_PROTOCOL = "paper"
PROTOCOLS = PROTOCOL_SETS[DEFAULT_PROTOCOL]


def protocol_for(benchmark: str, protocol: str = DEFAULT_PROTOCOL) -> Protocol:
    """The sampling and checking of `benchmark` under the named protocol set."""
    try:
        chosen = PROTOCOL_SETS[protocol]
    except KeyError:
        raise BenchmarkError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOL_SETS)}") from None
    return chosen.get(benchmark, chosen["*"])


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str


@dataclass(frozen=True)
class Benchmark:
    name: str
    questions: list[Question]
    protocol: Protocol
    source: str  # the file it came from, or "limr.tasks.synthetic(seed=...)"


def load_benchmark(
    name: str, data_dir: str | Path | None, limit: int | None = None, seed: int = 0, protocol: str = DEFAULT_PROTOCOL
) -> Benchmark:
    """Load `<data_dir>/<name>.jsonl` (or generate `synthetic`), keeping the first `limit` questions."""
    chosen = protocol_for(name, protocol)
    path = Path(data_dir) / f"{name}.jsonl" if data_dir is not None else None
    if path is not None and path.is_file():
        questions, source = read_questions(path), str(path)
    elif name == "synthetic":
        _, test = make_splits(SyntheticConfig(seed=seed, n_train=0, n_test=200))
        questions = [Question(p.id, p.prompt, p.answer) for p in test]
        source = f"limr.tasks.synthetic(seed={seed}, held-out)"
    elif data_dir is None:
        raise BenchmarkError(f"benchmark {name!r} needs --data-dir (a directory with {name}.jsonl)")
    else:
        raise BenchmarkError(f"benchmark {name!r}: no file {path}")
    if not questions:
        raise BenchmarkError(f"benchmark {name!r} ({source}) has no questions")
    return Benchmark(name, questions[:limit] if limit else questions, chosen, source)


def read_questions(path: Path) -> list[Question]:
    """Questions of a benchmark file, rows read as prompt pools are (limr.data.pool.read_rows: formats and
    errors); unlike a pool, each row may name its question and answer fields differently."""
    out: list[Question] = []
    try:
        for where, rec in read_rows(path):
            if not isinstance(rec, dict):
                raise BenchmarkError(f"{path}: {where}: expected a JSON object")
            q, a = _first(rec, PROMPT_FIELDS), _first(rec, ANSWER_FIELDS)
            if q is None or a is None:
                raise BenchmarkError(
                    f"{path}: {where}: needs a question field {PROMPT_FIELDS} and an answer field {ANSWER_FIELDS}, "
                    f"found {sorted(rec)}"
                )
            out.append(Question(prompt_id_of(rec, q), q, normalize_gold(a)))
    except PoolError as e:
        raise BenchmarkError(str(e)) from None
    return out


def _first(rec: dict[str, Any], fields: tuple[str, ...]) -> str | None:
    for k in fields:
        v = rec.get(k)
        if v is not None and str(v).strip():
            return str(v)
    return None
