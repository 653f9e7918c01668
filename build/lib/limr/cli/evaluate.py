"""`limr eval`: benchmark accuracy of a model with vLLM under the released LIMR evaluation protocol (or `reward`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        model: Annotated[Path, typer.Option("--model", help="HuggingFace model directory.")],
        benchmarks: Annotated[
            str, typer.Option(help="Comma-separated: math500, aime24, amc23, synthetic, or any <name>.jsonl.")
        ] = "math500,aime24,amc23",
        data_dir: Annotated[
            Path | None, typer.Option("--data-dir", help="Directory of <benchmark>.jsonl files (question, answer).")
        ] = None,
        protocol: Annotated[
            str,
            typer.Option(
                help="paper: the released LIMR eval (MATH500 greedy, AIME24/AMC23 4 x T=0.4, top_p 0.95, 3,072 "
                "tokens, last box checked); reward: greedy, graded by the training reward's rules."
            ),
        ] = "paper",
        max_tokens: Annotated[
            int | None,
            typer.Option("--max-tokens", help="Generated tokens per sample (the protocol's, capped by the context)."),
        ] = None,
        limit: Annotated[int | None, typer.Option(help="Only the first N questions of each benchmark.")] = None,
        out: Annotated[Path | None, typer.Option(help="Result JSON (default: eval-<model dir name>.json).")] = None,
        template: Annotated[str, typer.Option(help="Prompt template: auto, chat, plain.")] = "auto",
        seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
        dtype: Annotated[str, typer.Option(help="vLLM dtype: auto, float32, bfloat16, float16.")] = "auto",
        kv_cache_gib: Annotated[
            float | None,
            typer.Option("--kv-cache-gib", help="KV cache GiB (default: 1 on CPU, from GPU memory on GPUs)."),
        ] = None,
        tensor_parallel_size: Annotated[int, typer.Option(help="GPUs per engine.")] = 1,
    ) -> None:
        """Evaluate a model; writes per-question correctness and accuracies as JSON and prints a table."""
        from pydantic import ValidationError

        from limr.evaluation.benchmarks import BenchmarkError
        from limr.evaluation.harness import EvalConfig, run_eval, write_result

        try:
            cfg = EvalConfig(
                model=model,
                benchmarks=[b for b in benchmarks.split(",") if b.strip()],
                data_dir=data_dir,
                protocol=protocol,
                max_tokens=max_tokens,
                limit=limit,
                template=template,
                seed=seed,
                dtype=dtype,
                kv_cache_gib=kv_cache_gib,
                tensor_parallel_size=tensor_parallel_size,
            )
            result = run_eval(cfg)
        except (ValidationError, BenchmarkError, FileNotFoundError, ValueError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from e
        path = write_result(result, out or Path(f"eval-{model.resolve().name}.json"))
        _print_table(result)
        for deviation in result["deviations_from_protocol"]:
            typer.echo(f"not the {result['protocol']} protocol: {deviation}")
        typer.echo(f"wrote {path}")


def _print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"limr eval: {result['model']} (protocol {result['protocol']})")
    for col in ("benchmark", "accuracy", "questions", "n", "T", "format err", "truncated"):
        table.add_column(col, justify="left" if col == "benchmark" else "right", no_wrap=True)
    for name, r in result["benchmarks"].items():
        table.add_row(
            name,
            f"{100 * r['accuracy']:.1f}%",
            str(r["n_questions"]),
            str(r["samples_per_question"]),
            f"{r['temperature']:g}",
            f"{100 * r['format_error_rate']:.1f}%",
            f"{100 * r['truncated_rate']:.1f}%",
        )
    Console(width=max(100, Console().width)).print(table)
