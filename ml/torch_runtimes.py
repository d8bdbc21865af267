"""PyTorch's own fast paths for a v2 network: `torch-compile` and `torch-int8`.

- `torch-compile`: the fp32 network through `torch.compile` (inductor, CPU). Nothing to ship:
  it is compiled when the worker loads the model (a C++ compiler on the worker host; tens of
  seconds on two cores), so the export records only its parity and build cost.
- `torch-int8`: PT2E static quantisation: `torch.export` -> `prepare_pt2e` with the x86
  inductor quantizer's default config (per-channel int8 weights, uint8 activations from
  histogram observers; the early stages of the image body left fp32) ->
  calibration on training images -> `convert_pt2e`; the quantised program is saved with
  `torch.export.save` (its sha256 goes in the card) and compiled by inductor at load, where the
  quantise/dequantise pairs around each convolution fold into oneDNN int8 kernels (VNNI/AMX).

In torch 2.14 PT2E lives in torchao (`torchao.quantization.pt2e`), pinned in requirements.txt.
Both forms compute logits only; the heatmap stays Grad-CAM on the fp32 network.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ml.runtimes import FLOAT_STAGES

TORCH_INT8_FILE = "model.int8.pt2"
# torch.export specialises on shapes unless told; the worker's batches are 1 to this many
# images (TTA views included).
MAX_EXPORT_BATCH = 1024
CALIBRATION_BATCH = 32


def _example(input_size: int, n_metadata: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(2, 3, input_size, input_size), torch.zeros(2, n_metadata)


def _dynamic_batch() -> tuple[dict, dict]:
    n = torch.export.Dim("n", min=1, max=MAX_EXPORT_BATCH)
    return {0: n}, {0: n}


class _Exported(torch.nn.Module):
    """The network one level down. An exported program unlifts into a GraphModule, whose own
    `meta` attribute (a dict) hides LesionNet's metadata branch, also called `meta`, at the top
    level ("references nonexistent attribute 0 of meta")."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        return self.network(images, metadata)


def quantize_pt2e(
    model: torch.nn.Module,
    input_size: int,
    n_metadata: int,
    images: np.ndarray,
    metadata: np.ndarray,
    *,
    float_stages: Sequence[str] = FLOAT_STAGES,
) -> torch.export.ExportedProgram:
    """`model` (a LesionNet, called with images and metadata) quantised to int8 by PT2E,
    calibrated on `images`/`metadata` (preprocessed training images), as an exported program
    with a dynamic batch dimension. The image body's `float_stages` stay fp32, as in the ONNX
    int8 form and for the same reason (ml/EXPERIMENTS.md, section 8a)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    example = _example(input_size, n_metadata)
    with torch.no_grad():
        captured = torch.export.export(
            _Exported(model).eval(), example, dynamic_shapes=_dynamic_batch()
        ).module()
        quantizer = X86InductorQuantizer()
        quantizer.set_global(get_default_x86_inductor_quantization_config())
        suffixes = tuple(f"backbone.{stage}" for stage in float_stages)
        for name, _ in model.named_modules():
            if suffixes and name.endswith(suffixes):
                quantizer.set_module_name_qconfig(f"network.{name}", None)
        prepared = prepare_pt2e(captured, quantizer)
        for start in range(0, len(images), CALIBRATION_BATCH):
            prepared(
                torch.from_numpy(images[start : start + CALIBRATION_BATCH]),
                torch.from_numpy(metadata[start : start + CALIBRATION_BATCH]),
            )
        converted = convert_pt2e(prepared)
        return torch.export.export(converted, example, dynamic_shapes=_dynamic_batch())


def save_program(program: torch.export.ExportedProgram, path: Path) -> Path:
    torch.export.save(program, str(path))
    return path


def _compile(module: torch.nn.Module) -> torch.nn.Module:
    """Inductor on CPU. Freezing turns the weights into constants, which is what lets the
    int8 pattern matcher fuse dequantise -> conv -> quantise into one oneDNN kernel."""
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    # Batch 1 and batch n both compile once, then every batch size reuses the dynamic graph.
    return torch.compile(module, backend="inductor", dynamic=None)


class TorchRunner:
    """A compiled PyTorch network (fp32 or PT2E int8): logits from numpy arrays, the same call
    as `ml.runtimes.OnnxRunner.logits`. Grad-CAM is not served from it (no autograd through
    compiled or quantised code): the Classifier keeps its fp32 network for the heatmap."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = _compile(module)
        # One forward at a time: inductor's compiled graphs are not re-entrant across threads
        # while they are still being (re)compiled.
        self._lock = threading.Lock()

    @classmethod
    def compiled(cls, model: torch.nn.Module) -> TorchRunner:
        """The fp32 network, compiled (`torch-compile`). A copy: Grad-CAM hooks the eager
        network for the heatmap, and a hook appearing under compiled code forces a recompile."""
        return cls(copy.deepcopy(model).eval())

    @classmethod
    def int8(cls, path: Path) -> TorchRunner:
        """A PT2E program written by `save_program` (`torch-int8`)."""
        # Importing torchao registers the quantised ops the saved program calls.
        import torchao.quantization.pt2e  # noqa: F401

        return cls(torch.export.load(str(path)).module())

    def _forward(self, images: np.ndarray, metadata: np.ndarray) -> np.ndarray:
        with self._lock, torch.no_grad():
            batch = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
            vectors = torch.from_numpy(np.ascontiguousarray(metadata, dtype=np.float32))
            return self.module(batch, vectors).float().numpy()

    def logits(self, images: np.ndarray, metadata: np.ndarray, views: int = 1) -> np.ndarray:
        """Logits averaged over `views` dihedral views (the card's TTA)."""
        from ml.runtimes import numpy_views

        if views <= 1:
            return self._forward(images, metadata)
        stacked = np.concatenate(numpy_views(images, views))
        logits = self._forward(stacked, np.tile(metadata, (views, 1)))
        return logits.reshape(views, len(images), -1).mean(0)
