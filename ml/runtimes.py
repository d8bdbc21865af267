"""Accelerated forms of an exported v2 model: ONNX Runtime in fp32 and in int8.

    python -m ml.runtimes --model-dir ml/models/ham10000-lite0-v2 [--calibration-images 256]

The model stays a PyTorch network trained and exported by `ml/`; this module writes the same
network as an ONNX graph (`model.onnx`) and a statically quantised copy (`model.int8.onnx`,
per-channel weights, activations calibrated on training images), checks both against the
PyTorch forward pass on validation images, and records them in the card under `runtimes`
with their checksums and parity figures. `Classifier` serves whichever the card's `runtime`
names; plain PyTorch stays the default and the reference.

The graph has two outputs: the logits and the class activation maps of the (first) image body.
For a global-average-pooling body followed by one linear layer, Grad-CAM's channel weights are
the head's weights divided by the map's area, so the normalised CAM is Grad-CAM exactly
(`tests/ml/test_runtimes.py` checks it) and the heatmap needs no autograd.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ml.imaging import load_rgb

RUNTIMES: tuple[str, ...] = ("torch", "onnx-fp32", "onnx-int8")
ONNX_FILES = {"onnx-fp32": "model.onnx", "onnx-int8": "model.int8.onnx"}
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
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _graph(model):
    """The network with logits and the first body's class activation maps as outputs."""
    import torch

    from ml.model import LesionEnsemble

    class Graph(torch.nn.Module):
        def __init__(self, network) -> None:
            super().__init__()
            self.network = network
            first = network.members[0] if isinstance(network, LesionEnsemble) else network
            self.first = first
            width = first.backbone.num_features
            self.register_buffer("cam_weights", first.classifier.weight[:, :width].detach())

        def forward(self, images, metadata):
            logits = self.network(images, metadata)
            feature_map = self.first.backbone.forward_features(images)
            cams = torch.einsum("kc,nchw->nkhw", self.cam_weights, feature_map)
            return logits, cams

    return Graph(model).eval()


def export_onnx(model, input_size: int, n_metadata: int, path: Path) -> Path:
    """Write `model` (LesionNet or LesionEnsemble) as an ONNX graph with a dynamic batch."""
    import torch

    images = torch.zeros(2, 3, input_size, input_size)
    metadata = torch.zeros(2, n_metadata)
    torch.onnx.export(
        _graph(model),
        (images, metadata),
        str(path),
        input_names=["images", "metadata"],
        output_names=["logits", "cams"],
        dynamic_axes={name: {0: "n"} for name in ("images", "metadata", "logits", "cams")},
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


def depthwise_convolutions(path: Path) -> list[str]:
    """Names of the grouped (depthwise) convolutions: with one 3x3 filter per channel they
    have too few weights to share an 8-bit scale well, and EfficientNet is full of them."""
    import onnx

    model = onnx.load(str(path))
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in node.attribute)
    ]


def quantize_int8(
    fp32: Path,
    out: Path,
    images: np.ndarray,
    metadata: np.ndarray,
    *,
    keep_depthwise_fp32: bool = False,
) -> Path:
    """Static int8 quantisation (QDQ, per-channel weights, activations by calibration).
    `keep_depthwise_fp32` leaves the depthwise convolutions in float (see
    `depthwise_convolutions`); measured on a third of the validation split it agreed with
    fp32 less often (69% against 88% for quantising everything), so it is off by default."""
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
                nodes_to_exclude=depthwise_convolutions(prepared) if keep_depthwise_fp32 else [],
                extra_options={"CalibPercentile": 99.99},
            )
        finally:
            prepared.unlink(missing_ok=True)
    return out


class OnnxRunner:
    """An ONNX Runtime session on one model file: logits and CAMs from numpy arrays."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        # An image-only network's graph has no metadata input: the exporter drops unused ones.
        self.inputs = {i.name for i in self.session.get_inputs()}

    def run(self, images: np.ndarray, metadata: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feed = {
            "images": np.ascontiguousarray(images, dtype=np.float32),
            "metadata": np.ascontiguousarray(metadata, dtype=np.float32),
        }
        logits, cams = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})
        return logits, cams

    def logits(self, images: np.ndarray, metadata: np.ndarray, views: int = 1) -> np.ndarray:
        """Logits averaged over `views` dihedral views (the card's TTA)."""
        if views <= 1:
            return self.run(images, metadata)[0]
        stacked = np.concatenate(numpy_views(images, views))
        logits = self.run(stacked, np.tile(metadata, (views, 1)))[0]
        return logits.reshape(views, len(images), -1).mean(0)


def normalised_cam(cams: np.ndarray, class_index: int) -> np.ndarray:
    """One image's CAM for one class, ReLU'd and scaled to [0, 1] as `grad_cam` does."""
    cam = np.maximum(cams[class_index], 0.0)
    peak = float(cam.max())
    return cam / peak if peak > 0 else np.zeros_like(cam)


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


def build(model_dir: Path, data_dir: Path, calibration_images: int, threads: int) -> dict:
    """Export, quantise, measure parity on the validation split and update the card."""
    import torch

    from ml.classes import CLASSES
    from ml.data import read_metadata_rows, read_split
    from ml.inference import Classifier
    from ml.metadata import N_FEATURES
    from ml.selection import calibrate

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

    fp32 = export_onnx(
        classifier.model, classifier.config.input_size, N_FEATURES, model_dir / "model.onnx"
    )
    int8 = quantize_int8(fp32, model_dir / "model.int8.onnx", calib_images, calib_meta)

    def probs(logits: np.ndarray) -> np.ndarray:
        return calibrate(logits, classifier.temperature, classifier.calibration_bias)

    reference = probs(
        np.concatenate(
            [
                classifier.forward(
                    torch.from_numpy(val_images[i : i + 32]), torch.from_numpy(val_meta[i : i + 32])
                )
                for i in range(0, len(val_images), 32)
            ]
        )
    )
    runtimes = {}
    for name, path in (("onnx-fp32", fp32), ("onnx-int8", int8)):
        runner = OnnxRunner(path, threads)
        logits = np.concatenate(
            [
                runner.logits(val_images[i : i + 32], val_meta[i : i + 32], classifier.tta or 1)
                for i in range(0, len(val_images), 32)
            ]
        )
        figures = parity(labels, reference, probs(logits), classifier.decide_all)
        runtimes[name] = {
            "file": path.name,
            "sha256": file_sha256(path),
            "mb": round(path.stat().st_size / 1e6, 2),
            "parity_on": f"validation split, {len(labels)} images, against runtime torch",
            "parity": {k: round(v, 5) for k, v in figures.items()},
            "servable": passes(figures),
        }
        if name == "onnx-int8":
            runtimes[name]["calibration"] = (
                f"{len(calib_images)} training images, percentile 99.99, per-channel weights, "
                "every convolution and the head in int8"
            )
    card["runtimes"] = runtimes
    card.setdefault("runtime", "torch")
    (model_dir / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return runtimes


def main(argv: Sequence[str] | None = None) -> None:
    from ml.data import default_data_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--calibration-images", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--serve", choices=RUNTIMES, help="also set the card's runtime")
    args = parser.parse_args(argv)
    runtimes = build(args.model_dir, args.data, args.calibration_images, args.threads)
    if args.serve:
        card_path = args.model_dir / "card.json"
        card = json.loads(card_path.read_text())
        if args.serve != "torch" and not runtimes[args.serve]["servable"]:
            raise SystemExit(f"{args.serve} failed parity; the card keeps {card['runtime']}")
        card["runtime"] = args.serve
        card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(runtimes, indent=2))


if __name__ == "__main__":
    main()
