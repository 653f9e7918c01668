"""Loading checkpoints into running vLLM engines: the worker extension and the checkpoint plumbing.

`LimrWorkerExtension` is mixed into vLLM's worker class by name (`worker_extension_cls`); importing it in the
worker process also registers limr's gloo weight-transfer engine with vLLM (limr.rollout.transfer), before the
worker builds its engine from `weight_transfer_config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import limr.rollout.transfer  # noqa: F401 (registers the gloo engine in every vLLM worker process)
from limr.rollout.types import WeightLoadError

if TYPE_CHECKING:
    import torch


class LimrWorkerExtension:
    """Mixed into every vLLM worker via `worker_extension_cls`; called through `LLM.collective_rpc`."""

    def limr_load_safetensors_dir(self, path: str) -> int:
        """Load a checkpoint directory through the same update lifecycle as a weight transfer: the worker's
        `start_weight_update` / `finish_weight_update` (vLLM's layerwise reload: name mapping, tensor-parallel
        sharding, post-load processing such as the CPU backend's weight repacking, tied layers included)."""
        from safetensors import safe_open

        count = 0

        def tensors():
            nonlocal count
            for f in sorted(Path(path).glob("*.safetensors")):
                with safe_open(str(f), framework="pt") as st:
                    for k in st.keys():  # noqa: SIM118 (safe_open has no __iter__)
                        count += 1
                        yield k, st.get_tensor(k)

        self.start_weight_update()  # type: ignore[attr-defined]
        self.get_model().load_weights(tensors())  # type: ignore[attr-defined]
        self.finish_weight_update()  # type: ignore[attr-defined]
        self.limr_refresh_tied_layers()
        return count

    def limr_refresh_tied_layers(self) -> int:
        """After any weight update: see `refresh_tied_layers`."""
        return refresh_tied_layers(self.get_model())  # type: ignore[attr-defined]


def refresh_tied_layers(model: torch.nn.Module) -> int:
    """Re-run weight post-processing on layers whose weight is shared with another layer (tied embeddings).

    vLLM's layerwise reload (the weight-transfer API's start/finish_weight_update) processes the layers that
    receive tensors; a tied LM head receives none of its own, so on the CPU backend it keeps the packed GEMM copy
    of the OLD embedding and greedy outputs mix old and new weights (found by tests/rollout: the updated model
    disagreed with transformers until this). vLLM 0.32's weight-transfer API has no hook for it (checked against
    its code): `finalize_layerwise_reload` puts back a layer that received no tensors without processing it,
    and sending `lm_head.weight` as well does not help: vLLM's `AutoWeightsLoader` loads a tied parameter under
    one name only (the first its traversal reaches, the embedding). So limr calls the layer's public
    quantisation-method hook `process_weights_after_loading` itself (for the CPU backend:
    `dispatch_cpu_unquantized_gemm`, the repacking); on GPUs it is a no-op for unquantised embeddings. Drop this
    when vLLM's reload processes layers that share a parameter.
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
