"""The README's benchmark figures, rendered from the stored results in benchmarks/results/*.json.

The README's "Measured" section holds a block between `<!-- bench:begin -->` and `<!-- bench:end -->` that
is this module's output, never hand-edited: `make bench` reruns the benchmarks and rewrites it, and
tests/bench/test_report.py fails when the block and the stored results disagree, so a figure in the README
is always one a reader can find, with its machine, load and commit, in a file under benchmarks/results/.

    python benchmarks/report.py              # print the block
    python benchmarks/report.py --write      # rewrite the block in README.md

A result quoted in the README adds its file name (without `.json`) to RENDERERS with a renderer (one function:
results document -> text); several runs of one script (e.g. the query API at several rates) are several files.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
README = REPO / "README.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def _m(x: float) -> str:
    return f"{x / 1e6:.1f}M"


def _k(x: float) -> str:
    return f"{x / 1e3:.0f}k"


def _range(s: dict[str, Any], fmt: Callable[[float], str] = str) -> str:
    """'median (min-max over R rounds)' of a harness spread."""
    return f"{fmt(s['median'])} ({fmt(s['min'])}-{fmt(s['max'])} over {len(s['rounds'])} rounds)"


def provenance(doc: dict[str, Any]) -> str:
    """Where a figure comes from: commit, date, load average before/after the run."""
    m = doc["meta"]
    before, after = m["machine_before"]["loadavg"][0], m["machine_after"]["loadavg"][0]
    commit = (m["git"]["commit"] or "unknown")[:8] + ("+dirty" if m["git"]["dirty"] else "")
    return f"commit {commit}, {m['started_at'][:10]}, load average {before} -> {after}, {m['wall_s']:.0f} s"


def lim_scoring(doc: dict[str, Any]) -> str:
    r = doc["results"]
    text = (
        f"- **`benchmarks/lim_scoring.py`** ({r['prompts']:,} prompts x {r['epochs']} epochs x {r['samples']} "
        f"samples = {_m(r['events'])} events; {provenance(doc)}): `score_run` "
        f"**{_range(r['limr']['events_per_s'], _m)} events/s** "
        f"({_m(r['events'] / r['limr']['cpu_seconds']['median'])} events per CPU second, which a loaded machine "
        f"disturbs less), peak RSS {r['limr']['peak_rss_mib_max']:.0f} MiB"
    )
    if "limr_score_cli" in r:
        c = r["limr_score_cli"]
        text += (
            f"; the `limr score` command end to end, writing all {c['lines_written']:,} JSON lines, "
            f"{_range(c['events_per_s'], _m)} events/s, peak RSS {c['peak_rss_mib_max']:.0f} MiB"
        )
    if "baseline" in r:
        b = r["baseline"]
        agree = "identical scores" if r["scores_agree"] else "SCORES DIFFER"
        text += (
            f"; the straightforward numpy baseline {_range(b['events_per_s'], _m)} events/s: limr is "
            f"**{_range(r['speedup_vs_baseline'], lambda x: f'{x}x')}** faster (paired rounds), {agree}"
        )
    return text + "."


def rollout(doc: dict[str, Any]) -> str:
    r = doc["results"]
    lines = [f"- **`benchmarks/rollout.py`** ({provenance(doc)})"]
    if "service" in r:
        s = r["service"]
        b = s["batch"]
        lines[0] += (
            f": tokens/s through the Serve app vs the bare vLLM engine ({s['model']} model, {b['prompts']} prompts"
            f" x n={b['n']} x {b['max_tokens']} tokens) {_range(s['service_http_vs_engine'])} over HTTP, "
            f"{_range(s['service_handle_vs_engine'])} through the handle."
        )
    if "engine_vs_generate" in r:
        lines[0] += " " if "service" in r else ": "
        threads = {row.get("generate_torch_threads") for row in r["engine_vs_generate"]}
        lines[0] += (
            "Engine vs transformers `generate` (sampling, exactly P x n x T new tokens, alternating; `generate` "
            f"on {'/'.join(str(t) for t in sorted(threads, key=str))} torch thread(s)):"
        )
        lines.append("")
        lines.append("  | model | P x n x T | engine tokens/s | `generate` tokens/s | engine / generate | faster |")
        lines.append("  |---|---|---|---|---|---|")
        for row in r["engine_vs_generate"]:
            b, ratio = row["batch"], row["engine_vs_generate"]
            lines.append(
                f"  | {row['model']} ({row['parameters'] / 1e6:.1f}M) | {b['prompts']}x{b['n']}x{b['max_tokens']} | "
                f"{row['engine_tokens_per_s']['median']:,.0f} | {row['generate_tokens_per_s']['median']:,.0f} | "
                f"{ratio['median']} ({ratio['min']}-{ratio['max']}) | {row['faster']} |"
            )
        lines.append("")
        lines.append("  " + _winners(r["engine_vs_generate"]))
    return "\n".join(lines)


def _winners(rows: list[dict[str, Any]]) -> str:
    """Which side won where, said from the rows (a side wins a shape only when it won every round)."""

    def shapes(side: str) -> str:
        picked = [
            f"{r['model']} {r['batch']['prompts']}x{r['batch']['n']}x{r['batch']['max_tokens']}"
            for r in rows
            if r["faster"].startswith(side)
        ]
        return ", ".join(picked) or "none"

    return (
        f"In every round, `generate` was faster for: {shapes('generate')}; the engine for: {shapes('engine')}; "
        f"the rounds disagreed for: {shapes('neither')}."
    )


def _cores(r: dict[str, Any]) -> str:
    """The machine's cores as the result records them ('cpu (2 cores, x86_64)' -> '2 cores')."""
    m = re.search(r"(\d+) cores", str(r.get("device", "")))
    return f"{m.group(1)} cores" if m else "machine"


def train_step(doc: dict[str, Any]) -> str:
    r = doc["results"]
    sec = r["seconds_per_step"]
    phases = ", ".join(f"{ph.replace('_', ' ')} {sec[ph]['median']:.1f} s" for ph in sec if ph != "total")
    peer = ""
    if "peer" in r:  # TRL's GRPOTrainer on the same step, measured in the same run
        p, x = r["peer"], r["limr_vs_trl_samples_per_second"]
        peer = (
            f" Same GRPO step in TRL {p['version']} `GRPOTrainer`, generating with {p['generation']}, "
            f"{p['torch_threads']} torch thread(s) in its one process against limr's learner's "
            f"{r['torch_threads']} (plus the vLLM engine's own process; both on the same {_cores(r)}): "
            f"{_range(p['samples_per_second'], lambda v: f'{v:g}')} samples/s against limr's "
            f"{_range(r['samples_per_second'], lambda v: f'{v:g}')}: limr {x['median']:g}x TRL "
            f"(per round {x['min']:g}-{x['max']:g}x)."
        )
    size = f"{r['parameters'] / 1e6:.1f}M-parameter model, " if r.get("parameters") else ""
    flag = f" --size {r['model_size']}" if r.get("model_size") not in (None, "tiny") else ""
    return (
        f"- **`benchmarks/train_step.py{flag}`** ({size}{r['backend']} rollout, "
        f"{r['samples_per_step']} samples per step, "
        f"{r['timed_steps']} timed steps; {provenance(doc)}): per step {_range(sec['total'], lambda x: f'{x:.1f} s')}"
        f"; medians {phases}.{peer}"
    )


def services(doc: dict[str, Any]) -> str:
    r = doc["results"]
    store = "SeaweedFS S3" if r["store"] == "seaweedfs-s3" else f"{r['store']} store"
    return (
        f"- **`benchmarks/services.py`** ({store}; {provenance(doc)}): scorer catch-up "
        f"{_range(r['catchup_events_per_s'], _k)} events/s, steady-state lag p99 {r['lag_p99_s']} s at "
        f"{r['steady_rate_objects_per_s']:g} objects/s; query API p50 {r['query_p50_ms']} ms / p99 "
        f"{r['query_p99_ms']} ms at {r['query_rate_per_s']:g} requests/s, {r['query_errors']} errors."
    )


def service_queries(doc: dict[str, Any]) -> str:
    """A `--queries-only` run of benchmarks/services.py: the read API alone at one open-loop request rate."""
    r, args = doc["results"], doc["meta"]["arguments"]
    store = {"seaweedfs-s3": "SeaweedFS S3", "file": "local-disk store"}.get(r["store"], f"{r['store']} store")
    return (
        f"- **`benchmarks/services.py --queries-only`** (query API, {store}, {r['api_workers']} API workers; "
        f"{provenance(doc)}, nice {doc['meta']['machine_before']['nice']}): **p50 {r['query_p50_ms']} ms / p99 "
        f"{r['query_p99_ms']} ms** (max {r['query_max_ms']} ms) at {r['query_rate_per_s']:g} requests/s "
        f"open-loop for {args['query_seconds']:g} s, {r['query_requests']:,} requests, {r['query_errors']} errors; "
        f"server CPU {r['server_cpu_ms_per_request']} ms per request."
    )


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "lim_scoring": lim_scoring,
    "rollout": rollout,
    "train_step": train_step,
    "train_step_small": train_step,
    "services": services,
    "services_queries_local_500": service_queries,
    "services_queries_s3_500": service_queries,
    "services_queries_s3_200": service_queries,
}


def render(results: Path = RESULTS) -> str:
    """The block for every stored result (by file name) that has a renderer, in RENDERERS' order."""
    docs = {path.stem: json.loads(path.read_text()) for path in sorted(results.glob("*.json"))}
    parts = [RENDERERS[name](docs[name]) for name in RENDERERS if name in docs]
    note = "<!-- generated by `python benchmarks/report.py --write` from benchmarks/results/*.json; do not edit -->"
    return "\n".join([BEGIN, note, *parts, END])


def readme_block(text: str) -> str:
    """The generated block as it stands in README text."""
    found = re.search(re.escape(BEGIN) + r".*?" + re.escape(END), text, re.S)
    if not found:
        raise ValueError(f"README.md has no {BEGIN} ... {END} block")
    return found.group(0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="rewrite the block in README.md")
    args = ap.parse_args(argv)
    block = render()
    if not args.write:
        print(block)
        return
    text = README.read_text()
    README.write_text(text.replace(readme_block(text), block))
    print(f"README.md: benchmark block rewritten from {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
