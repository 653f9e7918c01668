"""Benchmark: how early can LIM select? Every early-LIM predictor at every k against the final selection.

Finished runs of several kinds, each given as per prompt and epoch counts:

- `sim-<regime>`: simulated runs with known profiles (`limr.algo.simulate`: easy, impossible, learnable with
  varied onset and rate, noisy), several regimes and seeds;
- `openrlhf`: OpenRLHF-style dumps (the test suite's generator, gaps included) imported with
  `limr.importers.import_dump`, as `limr import openrlhf` does, and read back from the store;
- `demo-synthetic`: the run `limr demo --synthetic-only` writes;
- `learner`: runs the learner trained (`--learner STORE:RUN`, or every finished learner run of
  `--learner-store STORE`, e.g. `limr demo`'s run or the FULL arms of `limr experiment`).

For each run and k = 1..E-1, each predictor (`seen`, `ravg`, `trend`, and `learned` fit leave-one-run-out
on all the other runs) is scored by `limr.algo.early_eval`: precision, recall and F1 of the selected set,
Spearman of scores, Brier score of the selection probability, predicted precision, rollouts saved. Each
run's `replay` F1 at each k (`replay_agreement`) says how far its final selection is decidable at k at all:
the F1 between it and replays of the run that share its first k epochs and redraw the rest.

Prints one JSON document (`benchmarks.harness`: machine, load, commit) and draws F1 vs k per predictor and
run (`--plot`, default out/early_lim/f1_vs_k.png).
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Bench, parser  # noqa: E402
from limr.algo.early_eval import EarlyScore, evaluate_run, replay_agreement  # noqa: E402
from limr.algo.early_learned import FinishedRun, fit_learned  # noqa: E402
from limr.algo.early_lim import DEFAULT_PREDICTOR, PREDICTORS  # noqa: E402
from limr.algo.lim import accuracy_from_counts  # noqa: E402
from limr.algo.simulate import REGIMES, simulate_run  # noqa: E402


@dataclass
class Run:
    name: str
    kind: str
    correct: np.ndarray  # (P, E)
    total: np.ndarray  # (P, E)

    @property
    def acc(self) -> np.ndarray:
        return accuracy_from_counts(self.correct, self.total)

    @property
    def samples(self) -> float:
        return float(self.total[self.total > 0].mean())


def store_run(store_uri: str, run_id: str, name: str, kind: str) -> Run:
    """Counts of a run in a store, accumulated exactly as the scorer and `limr score` do."""
    from limr.scoring import accumulate_run
    from limr.store import open_store

    counts, _, _ = accumulate_run(open_store(store_uri), run_id)
    return Run(name, kind, np.array(counts.correct), np.array(counts.total))


def simulated_runs(prompts: int, epochs: int, samples: int, seeds: int) -> list[Run]:
    out = []
    for regime_name, regime in REGIMES.items():
        for seed in range(seeds):
            sim = simulate_run(regime, prompts, epochs, samples, seed=seed)
            out.append(Run(f"sim-{regime_name}-s{seed}", f"sim-{regime_name}", sim.correct, sim.total))
    return out


def openrlhf_run(tmp: Path) -> Run:
    from limr.importers import dump_format, import_dump
    from limr.store import open_store
    from tests.events.dumps import make_dumps

    root, _ = make_dumps(tmp / "dumps", steps_per_epoch=3, samples=8, per_group=40, seed=1)
    import_dump(open_store(str(tmp / "store")), dump_format("openrlhf"), root, "openrlhf", 3)
    return store_run(str(tmp / "store"), "openrlhf", "openrlhf", "openrlhf")


def demo_synthetic_run(tmp: Path) -> Run:
    from limr.demo import write_synthetic_run
    from limr.store import open_store

    write_synthetic_run(open_store(str(tmp / "store")), "demo-synthetic", seed=0)
    return store_run(str(tmp / "store"), "demo-synthetic", "demo-synthetic", "demo-synthetic")


def learner_runs(specs: list[str], stores: list[str]) -> list[Run]:
    """Runs named STORE:RUN, and every finished learner run (run.json source 'learner') of each store."""
    from limr.events.run import list_runs, read_run_meta
    from limr.store import open_store

    pairs = [tuple(s.rsplit(":", 1)) for s in specs]
    for uri in stores:
        st = open_store(uri)
        for run_id in list_runs(st):
            try:
                meta = read_run_meta(st, run_id)
            except (ValueError, LookupError):
                continue
            if meta.source == "learner":
                pairs.append((uri, run_id))
    out = []
    repeated = {r for r in (run_id for _, run_id in pairs) if sum(1 for _, x in pairs if x == r) > 1}
    for uri, run_id in pairs:
        # two stores may hold runs of the same id (two studies): name them by store too, or one hides the other
        name = f"learner-{run_id}" + (f"@{uri.rstrip('/').rsplit('/', 1)[-1]}" if run_id in repeated else "")
        run = store_run(uri, run_id, name, "learner")
        epochs = run.total.shape[1]
        if epochs < 2:
            print(f"skipping {uri}:{run_id}: {epochs} epoch(s)", file=sys.stderr)
            continue
        out.append(run)
    return out


def evaluate_all(runs: list[Run], threshold: float, learned: bool) -> dict[str, list[EarlyScore]]:
    finished = [FinishedRun(r.acc, r.samples) for r in runs]
    results: dict[str, list[EarlyScore]] = {}
    for i, run in enumerate(runs):
        rows = evaluate_run(run.correct, run.total, threshold, PREDICTORS)
        if learned and len(runs) > 1:
            model = fit_learned([f for j, f in enumerate(finished) if j != i], threshold)
            e, samples = run.total.shape[1], run.samples

            def predict(acc, k, model=model, e=e, samples=samples):  # noqa: ANN001, ANN202
                return model.predict(acc, k, e, samples)

            rows += evaluate_run(run.correct, run.total, threshold, {"learned": predict})
        results[run.name] = sorted(rows, key=lambda r: (r.epochs_seen, r.predictor))
    return results


def replays(runs: list[Run], threshold: float, draws: int) -> dict[str, list[float]]:
    """Per run, the replay agreement at k = 1..E-1 (index k - 1)."""
    return {
        r.name: [replay_agreement(r.correct, r.total, k, threshold, draws) for k in range(1, r.total.shape[1])]
        for r in runs
    }


def half_epochs(rows: list[EarlyScore], predictor: str) -> EarlyScore | None:
    """The row of `predictor` at k = E / 2 (rounded down)."""
    for r in rows:
        if r.predictor == predictor and r.epochs_seen == r.epochs_total // 2:
            return r
    return None


def plot(
    results: dict[str, list[EarlyScore]], kinds: dict[str, str], replay: dict[str, list[float]], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    cols = min(4, len(names))
    rows_n = -(-len(names) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4 * cols, 3.2 * rows_n), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        by_pred: dict[str, list[EarlyScore]] = {}
        for r in results[name]:
            by_pred.setdefault(r.predictor, []).append(r)
        for pred, rs in sorted(by_pred.items()):
            x = [r.epochs_seen / r.epochs_total for r in rs]
            y = [r.f1 if np.isfinite(r.f1) else np.nan for r in rs]
            ax.plot(x, y, marker="o", ms=3, label=pred, lw=2.2 if pred == DEFAULT_PREDICTOR else 1.2)
        e = len(replay[name]) + 1
        ax.plot([k / e for k in range(1, e)], replay[name], color="black", ls="--", lw=1, label="replay")
        ax.axhline(0.85, color="grey", ls=":", lw=1)
        ax.set_title(f"{name} ({kinds[name]})", fontsize=9)
        ax.set_xlabel("epochs seen / epochs of the run")
        ax.set_ylabel("F1 vs final selection")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--plot", type=Path, default=Path("out/early_lim/f1_vs_k.png"), help="PNG of F1 vs k.")
    ap.add_argument("--threshold", type=float, default=0.6)
    ap.add_argument("--sim-prompts", type=int, default=1000)
    ap.add_argument("--sim-epochs", type=int, default=12)
    ap.add_argument("--sim-samples", type=int, default=8)
    ap.add_argument("--sim-seeds", type=int, default=2)
    ap.add_argument("--learner", action="append", default=[], help="STORE:RUN of a finished learner run.")
    ap.add_argument("--learner-store", action="append", default=[], help="Every learner run of this store.")
    ap.add_argument("--replay-draws", type=int, default=50, help="Replays behind each run's replay F1.")
    ap.add_argument("--no-learned", action="store_true", help="Skip the leave-one-run-out learned predictor.")
    args = ap.parse_args(argv)

    with Bench("early_lim", args) as bench:
        with tempfile.TemporaryDirectory(prefix="limr-early-") as tmp:
            runs = simulated_runs(args.sim_prompts, args.sim_epochs, args.sim_samples, args.sim_seeds)
            runs.append(openrlhf_run(Path(tmp) / "openrlhf"))
            runs.append(demo_synthetic_run(Path(tmp) / "demo"))
            runs += learner_runs(args.learner, args.learner_store)
        results = evaluate_all(runs, args.threshold, learned=not args.no_learned)
        replay = replays(runs, args.threshold, args.replay_draws)
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(results, {r.name: r.kind for r in runs}, replay, args.plot)
        summary = {}
        for run in runs:
            half = half_epochs(results[run.name], DEFAULT_PREDICTOR)
            summary[run.name] = {
                "kind": run.kind,
                "prompts": int(run.total.shape[0]),
                "epochs": int(run.total.shape[1]),
                "samples_per_prompt_epoch": round(run.samples, 2),
                "selected_final": half.selected_final if half else None,
                # the F1 of keeping every prompt: where LIM keeps most of the pool, a high F1 says little
                "f1_select_everything": 2 * half.selected_final / (run.total.shape[0] + half.selected_final)
                if half
                else None,
                f"{DEFAULT_PREDICTOR}_f1_at_half_epochs": half.f1 if half else None,
                "replay_f1_at_half_epochs": replay[run.name][run.total.shape[1] // 2 - 1],
                "replay_f1_by_k": [round(f, 4) for f in replay[run.name]],
                "f1_at_half_epochs": {
                    r.predictor: r.f1 for r in results[run.name] if r.epochs_seen == run.total.shape[1] // 2
                },
            }
        bench.results.update(
            threshold=args.threshold,
            default_predictor=DEFAULT_PREDICTOR,
            predictors=list(PREDICTORS) + ([] if args.no_learned else ["learned (leave-one-run-out)"]),
            plot=str(args.plot),
            summary=summary,
            rows={name: [r.to_dict() for r in rows] for name, rows in results.items()},
        )


if __name__ == "__main__":
    main()
