"""Benchmarks and the paper's sampling protocol for each.

LIMR evaluates MATH500 with greedy decoding and AIME24 / AMC23 with four samples per question at
temperature 0.4, averaging accuracy over samples (small benchmarks are noisy under one sample).
Benchmark files are JSONL with a question and an answer per line (`question`/`prompt`/`problem`,
`answer`/`solution`; a solution's last `\\boxed{}` is its answer), named `<benchmark>.jsonl` in a data
directory. `synthetic` is the held-out split of `limr.tasks.synthetic` unless the directory has a
`synthetic.jsonl`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limr.data.pool import ANSWER_FIELDS, PROMPT_FIELDS, PoolError, read_rows
from limr.events.ids import prompt_id_of
from limr.reward import normalize_gold
from limr.tasks.synthetic import SyntheticConfig, make_splits


class BenchmarkError(ValueError):
    """A benchmark that cannot be loaded; the message names the file and line."""


@dataclass(frozen=True)
class Protocol:
    """How a benchmark is sampled."""

    n: int = 1  # samples per question
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0


PROTOCOLS: dict[str, Protocol] = {
    "math500": Protocol(n=1, temperature=0.0),
    "aime24": Protocol(n=4, temperature=0.4),
    "amc23": Protocol(n=4, temperature=0.4),
    "synthetic": Protocol(n=1, temperature=0.0),
}
DEFAULT_PROTOCOL = Protocol()


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


def load_benchmark(name: str, data_dir: str | Path | None, limit: int | None = None, seed: int = 0) -> Benchmark:
    """Load `<data_dir>/<name>.jsonl` (or generate `synthetic`), keeping the first `limit` questions."""
    protocol = PROTOCOLS.get(name, DEFAULT_PROTOCOL)
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
    return Benchmark(name, questions[:limit] if limit else questions, protocol, source)


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
