"""Accelerated forms of an exported v2 model: ONNX Runtime in fp32 and in int8.

    python -m ml.runtimes --model-dir ml/models/ham10000-lite0-v2 [--calibration-images 256]

The model stays a PyTorch network trained and exported by `ml/`; this module writes the same
network as an ONNX graph (`model.onnx`) and a statically quantised copy (`model.int8.onnx`,
per-channel weights, activations calibrated on training images), checks both against the
PyTorch forward pass on validation images, and records them in the card under `runtimes`
with their checksums and parity figures. `Classifier` serves whichever the card's `runtime`
names; plain PyTorch stays the default and the reference.

The graph has three outputs, read by name: the logits, the class activation maps of the
(first) image body, and the pooled image features the similar-cases embedding reads.
For a global-average-pooling body followed by one linear layer, Grad-CAM's channel weights are
the head's weights divided by the map's area, so the normalised CAM is Grad-CAM exactly
(`tests/ml/test_runtimes.py` checks it) and the heatmap needs no autograd.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ml.heatmap import normalised_cam
from ml.imaging import load_rgb

# normalised_cam moved to ml.heatmap (torch-free drawing); callers still import it from here.
__all__ = ["OnnxRunner", "export_onnx", "normalised_cam", "numpy_input", "quantize_int8"]

RUNTIMES: tuple[str, ...] = ("torch", "torch-compile", "torch-int8", "onnx-fp32", "onnx-int8")
ONNX_FILES = {"onnx-fp32": "model.onnx", "onnx-int8": "model.int8.onnx"}
CALIBRATION_PERCENTILE = 99.99
# The stages of the image body that stay in float in the ONNX int8 form: the stem and the
# first five of EfficientNet's seven block stages (ml/EXPERIMENTS.md, section 8: with every
# stage in int8 only 93.5% of validation decisions matched fp32; floating stem..blocks.2 gave
# 98.3%, stem..blocks.4 99.6%).
FLOAT_STAGES: tuple[str, ...] = ("conv_stem", *(f"blocks.{i}" for i in range(5)))
# Training images the int8 forms are calibrated on. ONNX Runtime's percentile calibrator keeps
# every activation of every image: 1,024 images took over 20 GB and were killed.
CALIBRATION_IMAGES = 256
OPSET = 17
# Issue 15's bar for serving an int8 form: it must decide like fp32 on validation images.
MAX_METRIC_DROP = 0.005
MIN_TOP1_AGREEMENT = 0.99


def numpy_input(image: Image.Image, config) -> np.ndarray:
    """(3, H, W) float32 network input without torch: the same Pillow resize and centre crop
    as `ml.preprocessing.to_model_input` (torchvision hands PIL images to Pillow), then the
    same scaling and normalisation. Identical to the torch path to float32 rounding."""
    image = load_rgb(image)
    width, height = image.size
    size = config.resize_to
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_w, new_h = int(size * width / height), size
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.Resampling.BICUBIC, reducing_gap=None)
    crop = config.input_size
    left = int(round((new_w - crop) / 2.0))
    top = int(round((new_h - crop) / 2.0))
    image = image.crop((left, top, left + crop, top + crop))
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    mean = np.asarray(config.mean, dtype=np.float32)
    std = np.asarray(config.std, dtype=np.float32)
    return np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1))


def numpy_views(batch: np.ndarray, views: int) -> list[np.ndarray]:
    """`ml.inference.tta_views` on an (n, 3, H, W) array."""
    plain = [batch, batch[..., ::-1], batch[..., ::-1, :], batch[..., ::-1, ::-1]]
    if views <= 1:
        return [batch]
    if views == 4:
        return plain
    if views != 8:
        raise ValueError(f"TTA takes 4 or 8 views, not {views}")
    return plain + [view.transpose(0, 1, 3, 2) for view in plain]


def file_sha256(path: Path) -> str:
    """The file's sha256, read a megabyte at a time (a model directory holds large files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


GRAPH_OUTPUTS: tuple[str, ...] = ("logits", "cams", "features")


def _graph(model):
    """The network with three outputs: logits; the first member's class activation maps (the
    heatmap without autograd); and the pooled image features `ml.embedding.pooled_features`
    gives (members side by side), which the similar-cases embedding reads. Each member's
    body runs once and feeds all three, so the extra outputs cost no second forward pass."""
    import torch

    from ml.model import LesionEnsemble

    class Graph(torch.nn.Module):
        def __init__(self, network) -> None:
            super().__init__()
            members = network.members if isinstance(network, LesionEnsemble) else [network]
            self.members = torch.nn.ModuleList(members)
            first = members[0]
            width = first.backbone.num_features
            self.register_buffer("cam_weights", first.classifier.weight[:, :width].detach())

        def forward(self, images, metadata):
            logits, pooled, cams = [], [], None
            for member in self.members:
                feature_map = member.backbone.forward_features(images)
                if cams is None:
                    cams = torch.einsum("kc,nchw->nkhw", self.cam_weights, feature_map)
                image_features = member.backbone.forward_head(feature_map, pre_logits=True)
                pooled.append(image_features)
                head_input = image_features
                if member.use_metadata:
                    branch = member.meta(metadata.to(image_features.dtype))
                    head_input = torch.cat([image_features, branch], dim=1)
                logits.append(member.classifier(head_input))
            mean = logits[0] if len(logits) == 1 else torch.stack(logits).mean(0)
            features = pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=1)
            return mean, cams, features

    return Graph(model).eval()


def export_onnx(model, input_size: int, n_metadata: int, path: Path) -> Path:
    """Write `model` (LesionNet or LesionEnsemble) as an ONNX graph with a dynamic batch and
    the outputs GRAPH_OUTPUTS."""
    import torch

    images = torch.zeros(2, 3, input_size, input_size)
    metadata = torch.zeros(2, n_metadata)
    torch.onnx.export(
        _graph(model),
        (images, metadata),
        str(path),
        input_names=["images", "metadata"],
        output_names=list(GRAPH_OUTPUTS),
        dynamic_axes={name: {0: "n"} for name in ("images", "metadata", *GRAPH_OUTPUTS)},
        opset_version=OPSET,
        dynamo=False,
    )
    return path


class _Calibration:
    """onnxruntime's CalibrationDataReader over preprocessed training images."""

    def __init__(self, images: np.ndarray, metadata: np.ndarray, batch: int = 16) -> None:
        self.batches = [
            {"images": images[i : i + batch], "metadata": metadata[i : i + batch]}
            for i in range(0, len(images), batch)
        ]
        self.position = 0

    def get_next(self) -> dict | None:
        if self.position >= len(self.batches):
            return None
        self.position += 1
        return self.batches[self.position - 1]

    def rewind(self) -> None:
        self.position = 0


# Inputs that carry shapes, not pictures: whatever computes them is integer-valued arithmetic
# and must stay exact.
_SHAPE_INPUTS = {"Pad": (1,), "Reshape": (1,), "Slice": (1, 2, 3, 4), "Expand": (1,), "Tile": (1,)}


def shape_arithmetic(path: Path) -> list[str]:
    """Names of the nodes that compute shapes and paddings rather than activations.

    timm's `tf_` EfficientNets pad TensorFlow-style ("SAME") at run time: before every
    stride-2 convolution a chain of Shape -> Cast -> Div -> Ceil -> Mul -> Sub ... works out
    the padding from the input's size. These are float Mul/Add/Sub nodes, so the quantiser
    calibrated them like activations and rounded the paddings (a range up to 160 in 8 bits is
    steps of 0.6): the 10x10 map before the last stride-2 convolution lost its padding, the
    final feature map came out 4x4 instead of 5x5, and int8 agreed with fp32 on 88% of
    decisions. Left in float they are exact (ml/EXPERIMENTS.md, section 8)."""
    import onnx

    graph = onnx.load(str(path)).graph
    producer = {output: node for node in graph.node for output in node.output}
    pending = [
        producer[node.input[i]]
        for node in graph.node
        for i in _SHAPE_INPUTS.get(node.op_type, ())
        if i < len(node.input) and node.input[i] in producer
    ]
    found: set[str] = set()
    while pending:
        node = pending.pop()
        if node.name in found:
            continue
        found.add(node.name)
        if node.op_type not in ("Shape", "Size"):  # they read a tensor's shape, not its values
            pending.extend(producer[name] for name in node.input if name in producer)
    return sorted(found)


def in_stages(path: Path, stages: Sequence[str]) -> list[str]:
    """Names of the nodes inside the named stages of the image body (`conv_stem`,
    `blocks.3`, ...), wherever the exporter nested them."""
    import onnx

    if not stages:
        return []
    pattern = re.compile("/(" + "|".join(re.escape(stage) for stage in stages) + ")/")
    return [node.name for node in onnx.load(str(path)).graph.node if pattern.search(node.name)]


def quantize_int8(
    fp32: Path,
    out: Path,
    images: np.ndarray,
    metadata: np.ndarray,
    *,
    float_stages: Sequence[str] = FLOAT_STAGES,
) -> Path:
    """Static int8 quantisation (QDQ, per-channel int8 weights, uint8 activations calibrated
    at the 99.99th percentile) of the classifier graph: every convolution, residual add and
    the head in int8 except those of `float_stages`; the shape arithmetic (`shape_arithmetic`)
    always stays float. The recipe and what else was tried: ml/EXPERIMENTS.md, section 8."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out, fp32 = out.resolve(), fp32.resolve()
    prepared = out.with_suffix(".pre.onnx")
    # onnxruntime leaves scratch files (augmented models, tensor data) in the working folder.
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
        try:
            # Symbolic shape inference trips over the runtime padding arithmetic of timm's
            # Conv2dSame; ONNX's own shape inference and the graph optimisation are enough.
            quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                str(prepared),
                str(out),
                _Calibration(images, metadata),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.Percentile,
                nodes_to_exclude=shape_arithmetic(prepared) + in_stages(prepared, float_stages),
                extra_options={"CalibPercentile": CALIBRATION_PERCENTILE},
            )
        finally:
            prepared.unlink(missing_ok=True)
    return out


def onnx_session(path: Path, threads: int = 1):
    """An ONNX Runtime CPU session on one file: `threads` inside an operator, one across."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxRunner:
    """An ONNX Runtime session on one model file: logits, CAMs and pooled features from numpy
    arrays, each output addressed by its name (a file exported before `features` existed
    has only the first two)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        self.session = onnx_session(path, threads)
        # An image-only network's graph has no metadata input: the exporter drops unused ones.
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.output_names = tuple(o.name for o in self.session.get_outputs())

    def outputs(
        self, images: np.ndarray, metadata: np.ndarray, names: Sequence[str] = ("logits",)
    ) -> dict[str, np.ndarray]:
        """The named outputs of one forward pass."""
        missing = [name for name in names if name not in self.output_names]
        if missing:
            raise ValueError(
                f"this ONNX file has no output {missing} (it has {list(self.output_names)}); "
                "export it again with python -m ml.runtimes"
            )
        feed = {
            "images": np.ascontiguousarray(images, dtype=np.float32),
            "metadata": np.ascontiguousarray(metadata, dtype=np.float32),
        }
        values = self.session.run(list(names), {k: v for k, v in feed.items() if k in self.inputs})
        return dict(zip(names, values, strict=True))

    def run(self, images: np.ndarray, metadata: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(logits, cams) of one forward pass."""
        out = self.outputs(images, metadata, ("logits", "cams"))
        return out["logits"], out["cams"]

    def logits(self, images: np.ndarray, metadata: np.ndarray, views: int = 1) -> np.ndarray:
        """Logits averaged over `views` dihedral views (the card's TTA)."""
        if views <= 1:
            return self.outputs(images, metadata)["logits"]
        stacked = np.concatenate(numpy_views(images, views))
        logits = self.outputs(stacked, np.tile(metadata, (views, 1)))["logits"]
        return logits.reshape(views, len(images), -1).mean(0)


def parity(
    labels: np.ndarray, reference: np.ndarray, candidate: np.ndarray, decide
) -> dict[str, float]:
    """How a runtime's probabilities compare with the reference's on the same images."""
    from ml.metrics import balanced_accuracy, multiclass_report

    from_ref, from_cand = decide(reference), decide(candidate)
    n_classes = reference.shape[1]
    ref_auc = multiclass_report(labels, reference)["melanoma"]["auc"]
    cand_auc = multiclass_report(labels, candidate)["melanoma"]["auc"]
    return {
        "top1_agreement": float(np.mean(from_ref == from_cand)),
        "balanced_accuracy": balanced_accuracy(labels, from_cand, n_classes),
        "balanced_accuracy_reference": balanced_accuracy(labels, from_ref, n_classes),
        "melanoma_auc": cand_auc,
        "melanoma_auc_reference": ref_auc,
        "max_abs_probability_difference": float(np.abs(reference - candidate).max()),
    }


def passes(figures: dict[str, float]) -> bool:
    return (
        figures["top1_agreement"] >= MIN_TOP1_AGREEMENT
        and figures["balanced_accuracy_reference"] - figures["balanced_accuracy"] <= MAX_METRIC_DROP
        and figures["melanoma_auc_reference"] - figures["melanoma_auc"] <= MAX_METRIC_DROP
    )


def _inputs(classifier, records, image_dir: Path, rows) -> tuple[np.ndarray, np.ndarray]:
    from ml import metadata as meta

    images, vectors = [], []
    for record in records:
        with Image.open(image_dir / f"{record.image_id}.jpg") as image:
            images.append(numpy_input(image, classifier.config))
        vectors.append(meta.encode(meta.from_row(rows[record.image_id])).numpy())
    return np.stack(images), np.stack(vectors).astype(np.float32)


def _batched(run, images: np.ndarray, metadata: np.ndarray, step: int = 32) -> np.ndarray:
    return np.concatenate(
        [run(images[i : i + step], metadata[i : i + step]) for i in range(0, len(images), step)]
    )


def _entry(figures: dict[str, float], n_images: int, path: Path | None = None, **extra) -> dict:
    """A card `runtimes` entry: the file and its checksum (if the form is shipped), what parity
    was measured on, the figures, and whether they pass the serving rule."""
    entry: dict = {}
    if path is not None:
        entry = {
            "file": path.name,
            "sha256": file_sha256(path),
            "mb": round(path.stat().st_size / 1e6, 2),
        }
    entry["parity_on"] = f"validation split, {n_images} images, against runtime torch"
    entry["parity"] = {k: round(v, 5) for k, v in figures.items()}
    entry["servable"] = passes(figures)
    entry.update(extra)
    return entry


def build(
    model_dir: Path,
    data_dir: Path,
    calibration_images: int,
    threads: int,
    forms: Sequence[str] = RUNTIMES[1:],
) -> dict:
    """Export and quantise the accelerated `forms`, measure each one's parity with the PyTorch
    network on the validation split, and record them in the card (other forms are kept)."""
    import torch

    from ml.classes import CLASSES
    from ml.data import read_metadata_rows, read_split
    from ml.inference import Classifier
    from ml.metadata import N_FEATURES
    from ml.selection import calibrate
    from ml.torch_runtimes import TORCH_INT8_FILE, TorchRunner, quantize_pt2e, save_program

    classifier = Classifier.load(model_dir, threads=threads, runtime="torch")
    card = classifier.card
    if card.get("network") not in ("lesionnet", "ensemble"):
        raise SystemExit("only v2 models (LesionNet or an ensemble) have accelerated runtimes")
    rows = read_metadata_rows(data_dir)
    split = read_split()
    rng = np.random.default_rng(0)
    train = [split["train"][i] for i in rng.permutation(len(split["train"]))]
    calib_images, calib_meta = _inputs(
        classifier, train[:calibration_images], data_dir / "images", rows
    )
    val_images, val_meta = _inputs(classifier, split["val"], data_dir / "images", rows)
    labels = np.array([CLASSES.index(r.dx) for r in split["val"]])
    views = classifier.tta or 1
    size = classifier.config.input_size
    calibration = (
        f"{len(calib_images)} training images (a fixed shuffle of the split), "
        f"per-channel int8 weights"
    )

    def probs(logits: np.ndarray) -> np.ndarray:
        return calibrate(logits, classifier.temperature, classifier.calibration_bias)

    def measure(logits: np.ndarray) -> dict[str, float]:
        return parity(labels, reference, probs(logits), classifier.decide_all)

    def through(runner) -> np.ndarray:
        return _batched(lambda i, m: runner.logits(i, m, views), val_images, val_meta)

    reference = probs(
        _batched(
            lambda i, m: classifier.forward(torch.from_numpy(i), torch.from_numpy(m)),
            val_images,
            val_meta,
        )
    )
    n = len(labels)
    runtimes = {}
    if {"onnx-fp32", "onnx-int8"} & set(forms):
        fp32 = export_onnx(classifier.model, size, N_FEATURES, model_dir / ONNX_FILES["onnx-fp32"])
        runtimes["onnx-fp32"] = _entry(measure(through(OnnxRunner(fp32, threads))), n, fp32)
    if "onnx-int8" in forms:
        int8 = quantize_int8(fp32, model_dir / ONNX_FILES["onnx-int8"], calib_images, calib_meta)
        runtimes["onnx-int8"] = _entry(
            measure(through(OnnxRunner(int8, threads))),
            n,
            int8,
            calibration=f"{calibration}, uint8 activations at the {CALIBRATION_PERCENTILE}th "
            f"percentile; in float: the stages {', '.join(FLOAT_STAGES)} and the padding "
            "arithmetic (ml.runtimes.shape_arithmetic); int8: the later stages and the head",
        )
    if "torch-compile" in forms:
        began = time.monotonic()
        runner = TorchRunner.compiled(classifier.model)
        logits = through(runner)
        runtimes["torch-compile"] = _entry(
            measure(logits),
            n,
            built_at="load (torch.compile, inductor); nothing shipped",
            build_and_parity_s=round(time.monotonic() - began, 1),
        )
    if "torch-int8" in forms:
        began = time.monotonic()
        program = quantize_pt2e(classifier.model, size, N_FEATURES, calib_images, calib_meta)
        path = save_program(program, model_dir / TORCH_INT8_FILE)
        quantise_s = time.monotonic() - began
        began = time.monotonic()
        logits = through(TorchRunner.int8(path))
        runtimes["torch-int8"] = _entry(
            measure(logits),
            n,
            path,
            calibration=f"{calibration}, PT2E X86InductorQuantizer default config "
            f"(uint8 activations, histogram observers); in float: the stages "
            f"{', '.join(FLOAT_STAGES)}",
            quantise_s=round(quantise_s, 1),
            compile_and_parity_s=round(time.monotonic() - began, 1),
        )
    # Read the card again: another build (other forms) may have written it meanwhile.
    card = json.loads((model_dir / "card.json").read_text())
    card["runtimes"] = {**card.get("runtimes", {}), **runtimes}
    card.setdefault("runtime", "torch")
    (model_dir / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return runtimes


def main(argv: Sequence[str] | None = None) -> None:
    from ml.data import default_data_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--calibration-images", type=int, default=CALIBRATION_IMAGES)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--forms",
        default=",".join(RUNTIMES[1:]),
        help=f"comma-separated, of {', '.join(RUNTIMES[1:])} (default: all)",
    )
    parser.add_argument("--serve", choices=RUNTIMES, help="also set the card's runtime")
    args = parser.parse_args(argv)
    forms = [f for f in args.forms.split(",") if f]
    unknown = sorted(set(forms) - set(RUNTIMES[1:]))
    if unknown:
        parser.error(f"unknown runtime(s) {', '.join(unknown)}; choose from {RUNTIMES[1:]}")
    runtimes = build(args.model_dir, args.data, args.calibration_images, args.threads, forms)
    card_path = args.model_dir / "card.json"
    card = json.loads(card_path.read_text())
    if args.serve:
        if args.serve != "torch" and not card["runtimes"][args.serve]["servable"]:
            raise SystemExit(f"{args.serve} failed parity; the card keeps {card['runtime']}")
        card["runtime"] = args.serve
        card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(runtimes, indent=2))


if __name__ == "__main__":
    main()
