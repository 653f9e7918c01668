"""One weight sync, learner -> 2 vLLM (CPU) replicas: limr's weight-transfer path vs the old object-store path.

Both sides run in one process against the same two replicas (Ray actors holding limr's `RolloutEngine`, the
class the Serve replicas wrap), alternating round by round:

- transfer (limr's path): vLLM's weight-transfer API with limr's gloo engine; the learner's rank 0 streams the
  actor's parameters in buckets to both replicas at once (`WeightTransferTrainerFactory` + a Ray-actor client,
  the same engine calls the Serve replicas make from `WeightHub` commands).
- object store (the path limr had before, kept here as a minimal baseline): `ray.put` of the whole state dict,
  a registry actor that keeps the tensors, and each replica pulling them and loading them into its engine.

Per side: wall seconds of one sync (until both replicas serve the new version) and peak extra resident memory
over the run's processes (driver, replicas and their engine processes, the registry, Ray's object store) above
the level before the sync. Models: the tiny test model and a randomly initialised ~100M-parameter Qwen2-shaped
model. The replicas then generate greedily to check they really serve the sent weights.

    python benchmarks/weight_sync.py --rounds 3 [--models tiny,qwen2-100m] [--log sync.log]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Bench, alternate, parser, ratio, spread  # noqa: E402

QWEN2_100M = {  # Qwen2 layout (GQA, SwiGLU, tied embeddings) at ~100M parameters
    "hidden_size": 768,
    "intermediate_size": 2048,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "vocab_size": 32768,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": True,
}


def make_models(root: Path, names: list[str]) -> dict[str, Path]:
    import torch
    import transformers

    from limr.model.tiny import init_tiny_model

    tiny = init_tiny_model(root / "tiny", seed=0)
    out = {}
    if "tiny" in names:
        out["tiny"] = tiny
    if "qwen2-100m" in names:
        torch.manual_seed(0)
        config = transformers.Qwen2Config(**QWEN2_100M, torch_dtype="float32")
        model = transformers.Qwen2ForCausalLM(config)
        path = root / "qwen2-100m"
        model.save_pretrained(path)
        transformers.AutoTokenizer.from_pretrained(tiny).save_pretrained(path)
        out["qwen2-100m"] = path
    return out


def replica_class():  # noqa: ANN201
    import ray

    @ray.remote(num_cpus=0)
    class Replica:
        """A RolloutEngine in its own actor: the part of a Serve replica that a weight sync touches."""

        def __init__(self, model: str) -> None:
            from limr.rollout.config import EngineConfig
            from limr.rollout.engine import RolloutEngine

            self.engine = RolloutEngine(EngineConfig(model=model, max_model_len=256, kv_cache_gib=0.1))

        def pids(self) -> list[int]:
            import psutil

            me = psutil.Process()
            return [me.pid, *(c.pid for c in me.children(recursive=True))]

        # -- limr's path: the engine calls a Serve replica makes for WeightHub commands
        def init(self, info: dict[str, Any]) -> None:
            self.engine.init_transfer(info)

        def start(self) -> None:
            self.engine.begin_update(60)

        def update(self, info: dict[str, Any]) -> None:
            self.engine.receive_update(info)

        def finish(self, version: int) -> int:
            return self.engine.finish_update(version)

        # -- the old path: pull the tensors the registry holds, load them into the engine
        def load_from(self, registry: Any, version: int) -> int:
            import ray
            from safetensors.torch import save_file

            tensors = ray.get(registry.latest.remote())
            d = tempfile.mkdtemp(prefix="limr-bench-")
            try:  # clone: safetensors refuses shared storage (tied embeddings), as the old path did too
                save_file({k: v.clone() for k, v in tensors.items()}, os.path.join(d, "model.safetensors"))
                del tensors
                return self.engine.load_checkpoint(d, version=version)
            finally:
                shutil.rmtree(d, ignore_errors=True)

        def greedy(self, prompt: list[int]) -> tuple[int, list[int]]:
            from limr.rollout.types import SamplingSpec

            res = self.engine.generate([prompt], SamplingSpec(temperature=0.0, max_tokens=8, ignore_eos=True))
            return res.weight_version, res.results[0].samples[0].token_ids

    return Replica


def registry_class():  # noqa: ANN201
    import ray

    @ray.remote(num_cpus=0)
    class Registry:
        """The old WeightRegistry's data path: it keeps the latest tensors for replicas to pull."""

        def __init__(self) -> None:
            self.tensors: dict[str, Any] = {}

        def commit(self, tensors: dict[str, Any]) -> None:
            self.tensors = tensors

        def latest(self) -> dict[str, Any]:
            return self.tensors

        def pid(self) -> int:
            return os.getpid()

    return Registry


class ActorsClient:
    """vLLM's `VLLMWeightSyncClient` over the replica actors (what HubSyncClient does through the WeightHub)."""

    def __init__(self, replicas: list[Any]) -> None:
        self.replicas, self.version = replicas, 0

    def _all(self, calls: list[Any]) -> None:
        import ray

        ray.get(calls)

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        off = int(init_info["rank_offset"])
        self._all([r.init.remote({**init_info, "rank_offset": off + i}) for i, r in enumerate(self.replicas)])

    def start_weight_update(self) -> None:
        self._all([r.start.remote() for r in self.replicas])

    def update_weights(self, update_info: dict[str, Any]) -> None:
        self._all([r.update.remote(update_info) for r in self.replicas])

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self._all([r.finish.remote(self.version) for r in self.replicas])


class PeakRss:
    """Sum of the resident memory of a set of processes, sampled every 20 ms; `peak` above the starting level."""

    def __init__(self, pids: list[int]) -> None:
        import psutil

        self.procs = [psutil.Process(p) for p in pids]
        self.start = self.peak = self._total()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _total(self) -> int:
        total = 0
        for p in self.procs:
            try:
                total += p.memory_info().rss
            except Exception:  # noqa: S110 (a process may exit between samples)
                pass
        return total + _shm_bytes()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._total())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._total())

    @property
    def extra_mib(self) -> float:
        return round((self.peak - self.start) / (1 << 20), 1)


def _shm_bytes() -> int:
    """Bytes in /dev/shm files (Ray's object store lives there on Linux, not in any process's private RSS)."""
    total = 0
    try:
        for entry in os.scandir("/dev/shm"):
            if entry.is_file(follow_symlinks=False):
                total += entry.stat().st_blocks * 512
    except OSError:
        return 0
    return total


def bench_model(name: str, path: Path, rounds: int) -> dict[str, Any]:
    import ray
    import torch
    import transformers
    from vllm.distributed.weight_transfer import ModuleSource, WeightTransferTrainerFactory

    from limr.rollout.transfer import GlooTrainerInitInfo

    Replica, Registry = replica_class(), registry_class()  # noqa: N806
    replicas = [Replica.remote(str(path)) for _ in range(2)]
    registry = Registry.remote()
    pids = [os.getpid(), ray.get(registry.pid.remote())] + [p for r in replicas for p in ray.get(r.pids.remote())]
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    n_params = sum(p.numel() for p in model.parameters())
    client = ActorsClient(replicas)
    from limr.learner.generator.publisher import _endpoint

    address, port = _endpoint()
    info = GlooTrainerInitInfo(rank=0, master_address=address, master_port=port, world_size=1 + len(replicas))
    sender = WeightTransferTrainerFactory.trainer_init(info, client=client, source=ModuleSource(model))
    version = [0]
    peaks: dict[str, list[float]] = {"transfer": [], "object_store": []}

    def perturb() -> None:  # new weights every sync, so no side can pass by loading nothing
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(0.999)

    def transfer() -> None:
        perturb()
        version[0] += 1
        client.version = version[0]
        with PeakRss(pids) as mem:
            sender.send_weights()
        peaks["transfer"].append(mem.extra_mib)

    def object_store() -> None:
        perturb()
        version[0] += 1
        with PeakRss(pids) as mem:
            ref = ray.put({k: v.detach() for k, v in model.state_dict().items()})
            ray.get(registry.commit.remote(ref))
            del ref
            ray.get([r.load_from.remote(registry, version[0]) for r in replicas])
            ray.get(registry.commit.remote({}))  # the old registry kept them until the next update
        peaks["object_store"].append(mem.extra_mib)

    times = alternate({"transfer": transfer, "object_store": object_store}, rounds=rounds)
    # both replicas serve the last version sent, greedy identical to each other
    served = ray.get([r.greedy.remote([5, 6, 7, 8]) for r in replicas])
    for r in replicas:
        ray.kill(r)
    ray.kill(registry)
    return {
        "parameters": n_params,
        "state_mib": round(sum(p.numel() * p.element_size() for p in model.parameters()) / (1 << 20), 1),
        "replicas": len(replicas),
        "transfer_s": spread(times["transfer"]),
        "object_store_s": spread(times["object_store"]),
        "speedup": ratio(times["object_store"], times["transfer"]),
        "transfer_peak_extra_mib": spread(peaks["transfer"][-rounds:], 1),
        "object_store_peak_extra_mib": spread(peaks["object_store"][-rounds:], 1),
        "replicas_serve_last_version": all(v == version[0] for v, _ in served) and served[0][1] == served[1][1],
    }


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="tiny,qwen2-100m")
    args = ap.parse_args(argv)
    with Bench("weight_sync", args) as bench:
        import ray

        root = Path(tempfile.mkdtemp(prefix="limr-bench-sync-"))
        try:
            models = make_models(root, args.models.split(","))
            ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
            for name, path in models.items():
                print(f"weight_sync: {name}", file=sys.stderr, flush=True)
                bench.results[name] = bench_model(name, path, args.rounds)
        finally:
            ray.shutdown()
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
