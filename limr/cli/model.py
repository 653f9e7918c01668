"""`limr model ...`: create the tiny CPU model and warm-start it with supervised fine-tuning."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    model = typer.Typer(help="Tiny Qwen2 model for CPU runs: init-tiny, sft.", no_args_is_help=True)

    @model.command("init-tiny")
    def init_tiny(
        out: Annotated[
            Path, typer.Option("--out", help="Directory to write the model to (must not exist or be empty).")
        ],
        seed: Annotated[int, typer.Option(help="Initialisation seed; same seed, same weights.")] = 0,
        hidden_size: Annotated[int, typer.Option(help="Model width (= heads * head_dim).")] = 128,
        num_layers: Annotated[int, typer.Option(help="Decoder layers.")] = 4,
        num_heads: Annotated[int, typer.Option(help="Attention heads.")] = 2,
        head_dim: Annotated[int, typer.Option(help="Per-head width (vLLM CPU needs >= 32).")] = 64,
        intermediate_size: Annotated[int, typer.Option(help="MLP width.")] = 512,
    ) -> None:
        """Write a freshly initialised tiny Qwen2ForCausalLM with its own byte-level tokenizer."""
        from pydantic import ValidationError

        from limr.model.tiny import TinyModelConfig, init_tiny_model

        try:
            cfg = TinyModelConfig(
                hidden_size=hidden_size,
                num_layers=num_layers,
                num_heads=num_heads,
                head_dim=head_dim,
                intermediate_size=intermediate_size,
            )
            path = init_tiny_model(out, seed=seed, config=cfg)
        except (ValidationError, FileExistsError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from e
        typer.echo(f"wrote tiny model to {path}")

    @model.command("sft")
    def sft(
        model_dir: Annotated[Path, typer.Option("--model", help="Model directory to start from.")],
        out: Annotated[Path, typer.Option("--out", help="Directory for the fine-tuned model.")],
        # Defaults: the measured warm start (docs/tasks.md): level-1 problems only; ~3 min on 2 cores, 5.5% on the
        # all-level synthetic benchmark and ~38% on level 1, where RL then has signal both ways.
        steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 800,
        batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 32,
        lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 3e-3,
        n_train: Annotated[int, typer.Option(help="Synthetic training problems.")] = 600,
        levels: Annotated[str, typer.Option(help="Comma-separated difficulty levels (1-5).")] = "1",
        column_fraction: Annotated[
            float, typer.Option(help="Share of additions shown worked digit by digit (0-1; the rest in one line).")
        ] = 0.0,
        skill: Annotated[
            list[str] | None,
            typer.Option(help="Extra problems of a named skill, SKILL=N (e.g. add-2x2=300); repeatable."),
        ] = None,
        seed: Annotated[int, typer.Option(help="Seed of data and batch order.")] = 0,
        template: Annotated[str, typer.Option(help="Prompt template: auto, chat, plain.")] = "auto",
        threads: Annotated[int, typer.Option(help="torch CPU threads (0: default).")] = 0,
        eval_n: Annotated[int, typer.Option(help="Held-out problems scored greedily at the end (0: skip).")] = 100,
    ) -> None:
        """Supervised warm start on synthetic worked solutions (answers end in \\boxed{})."""
        from pydantic import ValidationError

        from limr.model.sft import SFTConfig, run_sft

        try:
            skills = _skill_counts(skill or [])
            cfg = SFTConfig(
                model=model_dir,
                out=out,
                steps=steps,
                batch_size=batch_size,
                lr=lr,
                n_train=n_train,
                levels=tuple(int(x) for x in levels.split(",") if x.strip()),
                column_fraction=column_fraction,
                skills=skills,
                seed=seed,
                template=template,
                threads=threads,
                eval_n=eval_n,
            )
            if not (cfg.model / "config.json").is_file():
                raise FileNotFoundError(f"--model {cfg.model}: not a HuggingFace model directory (no config.json)")
            result = run_sft(cfg)
        except (ValidationError, FileExistsError, FileNotFoundError, ValueError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from e
        acc = "" if result.accuracy is None else f", greedy accuracy {100 * result.accuracy:.1f}% on {result.eval_n}"
        took = f"{result.steps} steps in {result.seconds:.0f}s, final loss {result.final_loss:.3f}"
        typer.echo(f"wrote {result.out} ({took}{acc})")

    app.add_typer(model, name="model")


def _skill_counts(items: list[str]) -> dict[str, int]:
    """`["add-2x2=300", ...]` -> {"add-2x2": 300}; a malformed item is an error naming --skill."""
    out: dict[str, int] = {}
    for item in items:
        name, _, n = item.partition("=")
        if not name or not n.strip().isdigit():
            raise ValueError(f"--skill {item!r}: expected SKILL=N, e.g. add-2x2=300")
        out[name.strip()] = out.get(name.strip(), 0) + int(n)
    return out
