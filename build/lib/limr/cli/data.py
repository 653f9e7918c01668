"""`limr data ...`: look inside prompt pools and write synthetic ones."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer


def pool_summary(pool: Any, samples: int = 1, seed: int = 0) -> dict[str, Any]:
    """Counts, fields, duplicates and sample records of a loaded pool (JSON-able)."""
    n = len(pool)
    fields: Counter[str] = Counter()
    types: dict[str, Counter[str]] = {}
    for rec in pool.records:
        for k, v in rec.items():
            fields[k] += 1
            types.setdefault(k, Counter())[type(v).__name__] += 1
    lengths = sorted(len(pool.prompt(i)) for i in range(n))
    answers = [pool.answer(i) for i in range(n)]
    picks = sorted(random.Random(seed).sample(range(n), min(samples, n)))
    return {
        "path": str(pool.path),
        "records": n,
        "duplicates": len(pool.duplicates) + len(pool.prompt_duplicates),
        "duplicate_ids_dropped": [vars(d) for d in pool.duplicates],
        "repeated_prompts_kept": [
            {**vars(d), "first_id": pool.ids[pool.rows.index(d.first_row)]} for d in pool.prompt_duplicates
        ],
        "prompt_field": pool.prompt_field,
        "answer_field": pool.answer_field,
        "records_without_answer": sum(a is None or a == "" for a in answers),
        "own_ids": pool.has_own_ids(),
        "fields": {k: {"count": c, "types": dict(types[k])} for k, c in fields.most_common()},
        "sources": dict(Counter(str(r.get("source")) for r in pool.records).most_common(10)),
        "prompt_chars": {
            "min": lengths[0] if lengths else 0,
            "median": lengths[n // 2] if lengths else 0,
            "max": lengths[-1] if lengths else 0,
        },
        "sample": [{"id": pool.ids[i], "answer": answers[i], "record": pool.records[i]} for i in picks],
    }


def _print_summary(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    con.print(f"[bold]{s['path']}[/bold]")
    con.print(f"{s['records']:,} records, {s['duplicates']:,} duplicate{'s' if s['duplicates'] != 1 else ''}")
    for d in s["duplicate_ids_dropped"]:
        con.print(f"  dropped: id {d['prompt_id']} at {d['row']} repeats {d['first_row']}")
    for d in s["repeated_prompts_kept"]:
        con.print(
            f"  same prompt text: id {d['prompt_id']} ({d['row']}) repeats id {d['first_id']} ({d['first_row']}); "
            "kept, ids differ"
        )
    con.print(
        f"prompt field: {s['prompt_field']!r}, answer field: {s['answer_field']!r}, "
        f"without answer: {s['records_without_answer']:,}, own ids: {s['own_ids']}"
    )
    pc = s["prompt_chars"]
    con.print(f"prompt length (chars): min {pc['min']}, median {pc['median']}, max {pc['max']}")
    table = Table(title="fields")
    table.add_column("field")
    table.add_column("present", justify="right")
    table.add_column("types")
    for k, v in s["fields"].items():
        table.add_row(k, f"{v['count']:,}", ", ".join(f"{t} ({c:,})" for t, c in v["types"].items()))
    con.print(table)
    con.print("sources: " + ", ".join(f"{k} ({v:,})" for k, v in s["sources"].items()))
    for smp in s["sample"]:
        con.print("[bold]sample[/bold] " + json.dumps(smp["record"], ensure_ascii=False)[:2000], highlight=False)


def register(app: typer.Typer) -> None:
    data = typer.Typer(help="Prompt pools: inspect, synthetic.", no_args_is_help=True)

    @data.command("inspect")
    def inspect(
        file: Annotated[Path, typer.Argument(help="JSON list, JSONL, Parquet file or HF save_to_disk directory.")],
        samples: Annotated[int, typer.Option(help="Sample records to show.")] = 1,
        seed: Annotated[int, typer.Option(help="Seed of the sample choice.")] = 0,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    ) -> None:
        """Print record count, fields, duplicates and sample records of a prompt pool."""
        from limr.data.pool import PoolError, load_pool

        try:
            pool = load_pool(file)
        except PoolError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from e
        summary = pool_summary(pool, samples, seed)
        if as_json:
            typer.echo(json.dumps(summary, indent=1, ensure_ascii=False, default=str))
        else:
            _print_summary(summary)

    @data.command("synthetic")
    def synthetic(
        out: Annotated[Path, typer.Option("--out", help="Directory for train.jsonl and synthetic.jsonl.")],
        n_train: Annotated[int, typer.Option(help="Train pool size.")] = 2000,
        n_test: Annotated[int, typer.Option(help="Held-out benchmark size.")] = 200,
        seed: Annotated[int, typer.Option(help="Seed.")] = 0,
        levels: Annotated[str, typer.Option(help="Comma-separated difficulty levels (1-5).")] = "1,2,3,4,5",
    ) -> None:
        """Write a synthetic train pool and a disjoint held-out benchmark (`limr eval --data-dir OUT`)."""
        from pydantic import ValidationError

        from limr.tasks.synthetic import SyntheticConfig, make_splits, write_jsonl

        try:
            lv = tuple(int(x) for x in levels.split(",") if x.strip())
            train, test = make_splits(SyntheticConfig(seed=seed, n_train=n_train, n_test=n_test, levels=lv))
        except (ValueError, ValidationError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from e
        write_jsonl(train, out / "train.jsonl")
        write_jsonl(test, out / "synthetic.jsonl")
        typer.echo(
            f"wrote {len(train)} train problems to {out / 'train.jsonl'}, {len(test)} to {out / 'synthetic.jsonl'}"
        )

    app.add_typer(data, name="data")
