"""How often a model solves each arithmetic skill when sampled as in RL: how the tiny study's pool was chosen.

A LIMR pool needs prompts the warm start already solves, prompts out of its reach and a learnable middle
(docs/experiment.md). This script measures which skill is which for a given model: for each skill it draws
`--per-skill` problems from its own seed stream, skips every problem of the experiment's held-out set (the
pool is chosen without looking at it), samples `--samples` completions at `--temperature` with vLLM, grades
them with the training reward and prints, per skill, the mean share of samples solved per prompt, the share of
prompts never solved and the share solved at least 3 times in 4; split by whether the warm start's SFT data
(the config's `warm_start`, its `sft_skills` included) held the problem.

    python scripts/skill_accuracy.py --model out/experiment/models/sft940-n600-l1-c0.2-s0/tiny-sft \\
        --skills add-1x1,add-1x2,add-2x1 [--config configs/experiment-tiny.yaml] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _problems(skills: list[str], per_skill: int, exclude: set[str], seed: int):
    from limr.tasks.skills import make_skill_problem

    rng = random.Random(seed)
    out = []
    for skill in skills:
        got: set[str] = set()
        for _ in range(200 * per_skill + 1000):
            if len(got) == per_skill:
                break
            p = make_skill_problem(rng, skill)
            if p.prompt not in exclude and p.prompt not in got:
                got.add(p.prompt)
                out.append((skill, p))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="HuggingFace model directory")
    ap.add_argument("--skills", default="add-1x1,add-1x2,add-2x1", help="comma-separated (limr.tasks.skills)")
    ap.add_argument(
        "--config",
        type=Path,
        default=REPO / "configs" / "experiment-tiny.yaml",
        help="experiment config: its held-out problems and SFT problems are identified from it",
    )
    ap.add_argument("--per-skill", type=int, default=48)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--seed", type=int, default=4242, help="seed of the problem stream (not the pool's)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)  # fmt: skip
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    logging.disable(logging.WARNING)

    from vllm import LLM, SamplingParams

    from limr.data.templates import render_prompt
    from limr.experiment.config import load_experiment
    from limr.reward import score_batch
    from limr.tasks.skills import make_mix

    cfg = load_experiment(args.config)
    seen = cfg.warm_start.seen_problems()  # its sft_skills included: the seen / not-seen split stays right
    if cfg.pool.mix is None:
        sys.exit(f"{args.config}: pool.mix is not set (this script measures skill mixes)")
    _, held_out = make_mix(cfg.pool.mix, held_out_exclude=seen)
    problems = _problems(args.skills.split(","), args.per_skill, {p.prompt for p in held_out}, args.seed)

    llm = LLM(model=str(args.model), dtype="float32", max_model_len=512, kv_cache_memory_bytes=1 << 29,
              seed=0, enable_chunked_prefill=False)  # fmt: skip
    tok = llm.get_tokenizer()
    params = SamplingParams(n=args.samples, temperature=args.temperature, max_tokens=args.max_tokens, seed=0)
    outs = llm.generate([render_prompt(p.prompt, tok) for _, p in problems], params, use_tqdm=False)
    rows: dict[str, list[float]] = {}
    for (skill, p), o in zip(problems, outs, strict=True):
        rewards = score_batch([c.text for c in o.outputs], [p.answer] * args.samples,
                              [c.finish_reason == "stop" for c in o.outputs])  # fmt: skip
        solved = sum(r == 1.0 for r in rewards) / args.samples
        for key in (skill, f"{skill} ({'in' if p.prompt in seen else 'not in'} SFT data)"):
            rows.setdefault(key, []).append(solved)
    report = {
        key: {
            "prompts": len(v),
            "mean_solved": round(sum(v) / len(v), 3),
            "never_solved": round(sum(x == 0 for x in v) / len(v), 3),
            "solved_3_in_4": round(sum(x >= 0.75 for x in v) / len(v), 3),
        }
        for key, v in sorted(rows.items())
    }
    if args.json:
        print(json.dumps({"model": str(args.model), "temperature": args.temperature, "samples": args.samples,
                          "skills": report}, indent=2))  # fmt: skip
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{args.model} at T = {args.temperature}, {args.samples} samples per prompt")
    for col in ("skill", "prompts", "mean solved", "never solved", "solved >= 3/4"):
        table.add_column(col, justify="left" if col == "skill" else "right")
    for key, r in report.items():
        table.add_row(key, str(r["prompts"]), f"{r['mean_solved']:.2f}", f"{r['never_solved']:.0%}",
                      f"{r['solved_3_in_4']:.0%}")  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
