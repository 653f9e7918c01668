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

    app.add_typer(model, name="model")
