"""Moving weights into running vLLM engines: the worker extension and the checkpoint/tensor plumbing.

No vLLM import here: `LimrWorkerExtension` is mixed into vLLM's worker class by name (`worker_extension_cls`)
and only calls the worker's own `reload_weights`; the rest reads safetensors and the object store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from limr.rollout.types import WeightLoadError

if TYPE_CHECKING:
    import torch


class LimrWorkerExtension:
    """Mixed into every vLLM worker via `worker_extension_cls`; called through `LLM.collective_rpc`.

    Both methods hand vLLM's worker `reload_weights` an iterator of HF-named tensors, so vLLM applies its own
    name mapping, tensor-parallel sharding and post-load processing (e.g. the CPU backend's weight repacking).
    """

    def limr_load_safetensors_bytes(self, blob: bytes) -> int:
        from safetensors.torch import load

        weights = load(blob)
        self._limr_reload(iter(weights.items()))
        return len(weights)

    def _limr_reload(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        self.reload_weights(weights_iterator=weights, is_checkpoint_format=True)  # type: ignore[attr-defined]
        _refresh_tied_layers(self.get_model())  # type: ignore[attr-defined]

    def limr_load_safetensors_dir(self, path: str) -> int:
        from safetensors import safe_open

        count = 0

        def tensors():
            nonlocal count
            for f in sorted(Path(path).glob("*.safetensors")):
                with safe_open(str(f), framework="pt") as st:
                    for k in st.keys():  # noqa: SIM118 (safe_open has no __iter__)
                        count += 1
                        yield k, st.get_tensor(k)

        self._limr_reload(tensors())
        return count


def _refresh_tied_layers(model: torch.nn.Module) -> int:
    """Re-run weight post-processing on layers whose weight is shared with another layer (tied embeddings).

    vLLM's in-place reload processes the layers it loads into; a tied LM head receives no tensors of its own,
    so on the CPU backend it keeps the packed GEMM copy of the OLD embedding and greedy outputs stay a mix of
    old and new weights (found by tests/rollout: the reloaded model disagreed with transformers until this).
    `process_weights_after_loading` is the layer's public quantisation-method hook; on GPUs it is a no-op for
    unquantised embeddings.
    """
    owners: dict[int, list[torch.nn.Module]] = {}
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if getattr(module, "quant_method", None) is not None and weight is not None:
            owners.setdefault(id(weight), []).append(module)
    refreshed = 0
    for modules in owners.values():
        if len(modules) > 1:
            for module in modules:
                module.quant_method.process_weights_after_loading(module)
                refreshed += 1
    return refreshed


def checkpoint_shapes(model_dir: str | Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of every tensor in a directory's safetensors files (headers only)."""
    from safetensors import safe_open

    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise WeightLoadError(f"no *.safetensors files in {model_dir} (only safetensors checkpoints are loaded)")
    shapes: dict[str, tuple[int, ...]] = {}
    for f in files:
        with safe_open(str(f), framework="pt") as st:
            for k in st.keys():  # noqa: SIM118
                shapes[k] = tuple(st.get_slice(k).get_shape())
    return shapes


def fetch_checkpoint(uri: str, dest: Path) -> Path:
    """A local directory holding the checkpoint at `uri`: a path/file:// as is, s3:// downloaded into `dest`."""
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme else uri)
        if not path.is_dir():
            raise WeightLoadError(f"checkpoint {uri!r} is not a directory")
        return path
    if parsed.scheme != "s3":
        raise WeightLoadError(f"unsupported checkpoint URI scheme {parsed.scheme!r} in {uri!r} (path, file://, s3://)")
    from limr.store import StoreError, open_store

    try:
        store = open_store(uri)
        keys = [k for k in store.list_keys() if k.endswith(".safetensors") and "/" not in k]
        if not keys:
            raise WeightLoadError(f"no *.safetensors objects directly under {uri!r}")
        for key in keys:
            store.get_to_file(key, str(dest / key))
    except StoreError as e:
        raise WeightLoadError(f"cannot fetch checkpoint {uri!r}: {e}") from e
    return dest


def safetensors_bytes(weights: Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]]) -> bytes:
    """Serialise named tensors for the worker RPC (safetensors: no pickle, dtype/shape preserved)."""
    from safetensors.torch import save

    items = weights.items() if isinstance(weights, Mapping) else weights
    # clone(): safetensors refuses tensors sharing storage (tied embeddings); the copy is transient.
    return save({k: v.detach().to("cpu").contiguous().clone() for k, v in items})
