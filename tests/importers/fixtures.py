"""One training run written as each framework writes its dumps, from the frameworks' own code:

- verl: `RayPPOTrainer._dump_generations`, volcengine/verl `verl/trainer/ppo/ray_trainer.py`
  (`{rollout_data_dir}/{global_step}.jsonl`; input/output/gts/score/step + reward_extra_info keys; the input
  is the prompt decoded after the chat template with special tokens skipped);
- NeMo-RL: `grpo_train` -> `Logger.log_batched_dict_as_jsonl`, NVIDIA-NeMo/RL `nemo_rl/algorithms/grpo.py`
  (`train_data_step{N}.jsonl`; content/rewards/input_lengths/...);
- AReaL: `WorkflowExecutor._dump_trajectory`, inclusionAI/AReaL `areal/core/workflow_executor.py`
  (`{log_path}/rollout/{tail_version}/{task_id}.jsonl`; task_id/sample_idx/seqlen/prompt_len/head_version/
  tail_version/reward/prompt/completion, special tokens kept);
- TRL: `GRPOTrainer.log`, huggingface/trl `trl/trainer/grpo_trainer.py`
  (`{output_dir}/completions/completions_{step:05d}.parquet`; step/prompt/completion/<reward funcs>/advantage).

The run itself is `tests.events.dumps.make_dumps` (OpenRLHF `step_N.json`, what the released script reads),
so every format carries exactly the same samples.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

#: What verl's `input` looks like for a Qwen chat template once `<|im_start|>`/`<|im_end|>` are skipped.
VERL_TEMPLATE = (
    "system\nPlease reason step by step, and put your final answer within \\boxed{{}}.\nuser\n{p}\nassistant\n"
)
#: AReaL decodes with special tokens kept.
AREAL_TEMPLATE = "<|im_start|>user\n{p}<|im_end|>\n<|im_start|>assistant\n"
#: NeMo-RL's math processor puts the templated prompt in the user message's content.
NEMO_TEMPLATE = "<|im_start|>user\nSolve the following math problem. {p}<|im_end|>\n<|im_start|>assistant\n"


def read_openrlhf(train_dir: Path) -> dict[int, list[dict]]:
    steps = {}
    for p in train_dir.glob("step_*.json"):
        steps[int(p.stem.split("_")[1])] = json.loads(p.read_text())
    return dict(sorted(steps.items()))


def write_verl(root: Path, steps: dict[int, list[dict]], dapo_filter: bool = False) -> Path:
    """`{step}.jsonl` files; with `dapo_filter` the all-solved / all-unsolved groups are dropped first."""
    root.mkdir(parents=True)
    for step, rows in steps.items():
        if dapo_filter:
            rows = _dapo(rows)
        lines = [
            {
                "input": VERL_TEMPLATE.format(p=r["prompt"]),
                "output": r["response"],
                "gts": "42",
                "score": r["reward"],
                "step": step,
                "acc": r["reward"] == 1,  # reward_extra_info
            }
            for r in rows
        ]
        (root / f"{step}.jsonl").write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    return root


def _dapo(rows: list[dict]) -> list[dict]:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["prompt"], []).append(r)
    return [r for g in groups.values() if len({x["reward"] == 1 for x in g}) == 2 for r in g]


def write_nemo_rl(root: Path, steps: dict[int, list[dict]]) -> Path:
    root.mkdir(parents=True)
    for step, rows in steps.items():
        lines = [
            {
                "content": [NEMO_TEMPLATE.format(p=r["prompt"]), r["response"]],
                "rewards": r["reward"],
                "generation_logprobs": [0.0, -0.5],
                "prev_logprobs": [0.0, -0.4],
                "input_lengths": 30 + r["response_length"],
            }
            for r in rows
        ]
        (root / f"train_data_step{step}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


def write_areal(log_path: Path, steps: dict[int, list[dict]]) -> Path:
    """Version v = step - 1; one file per prompt (task), its samples appended."""
    task = 0
    for step, rows in steps.items():
        d = log_path / "rollout" / str(step - 1)
        d.mkdir(parents=True)
        by_prompt: dict[str, list[dict]] = {}
        for r in rows:
            by_prompt.setdefault(r["prompt"], []).append(r)
        for prompt, group in by_prompt.items():
            lines = [
                {
                    "task_id": task,
                    "sample_idx": i,
                    "seqlen": 20 + r["response_length"],
                    "prompt_len": 20,
                    "head_version": step - 1,
                    "tail_version": step - 1,
                    "reward": r["reward"],
                    "prompt": AREAL_TEMPLATE.format(p=prompt),
                    "completion": r["response"] + "<|im_end|>",
                }
                for i, r in enumerate(group)
            ]
            (d / f"{task}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
            task += 1
    return log_path


def write_trl(output_dir: Path, steps: dict[int, list[dict]]) -> Path:
    """Conversational prompts; two reward functions: accuracy (1/0) and a format penalty (the rest)."""
    d = output_dir / "completions"
    d.mkdir(parents=True)
    for step, rows in steps.items():
        table = pa.table(
            {
                "step": [step] * len(rows),
                "prompt": [[{"role": "user", "content": r["prompt"]}] for r in rows],
                "completion": [[{"role": "assistant", "content": r["response"]}] for r in rows],
                "accuracy_reward": [1.0 if r["reward"] == 1 else 0.0 for r in rows],
                "format_reward": [0.0 if r["reward"] == 1 else r["reward"] for r in rows],
                "advantage": [0.0] * len(rows),
            }
        )
        pq.write_table(table, d / f"completions_{step:05d}.parquet")
    return output_dir
