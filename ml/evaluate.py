"""Evaluate an exported classifier on any labelled folder of dermoscopic images.

    python -m ml.evaluate --images DIR --labels CSV [--out DIR] [--model-dir ml/models/<version>]

The labels CSV may be in any of three forms (detected from its header):
- ISIC 2018 / HAM10000 metadata: `image_id`, `dx` (akiec, bcc, bkl, df, mel, nv, vasc);
- ISIC 2018 Task 3 ground truth: `image`, `MEL`, `NV`, `BCC`, `AKIEC`, `BKL`, `DF`, `VASC`
  (one-hot);
- binary: `image_id` (or `image`), `melanoma` (1 = melanoma, 0 = not): only the melanoma
  metrics apply, since the other six classes are not told apart.

When the CSV also has `age`, `sex` and `localization` (HAM10000's metadata; ISIC's
`anatom_site_general` is read too), a model that uses metadata reads them, and the melanoma
figures are broken down by site group, age band, sex and `dataset` (source). `--no-metadata`
measures the same model on the images alone.

Images are found by id with any of the usual extensions and may be of any size; they go
through the model exactly as in the portal (`ml.inference.Classifier`). Prints the metrics of
`ml.metrics` as JSON; with --out also writes metrics.json, predictions.csv and PNG plots
(confusion matrix, ROC, reliability diagram).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml import metadata as meta
from ml.breakdowns import group_keys, melanoma_by_group
from ml.calibration import RISK_TIERS
from ml.classes import CLASS_NAMES, CLASSES, MELANOMA_INDEX
from ml.inference import MODELS_ROOT, Classifier
from ml.metrics import (
    ECE_BINS,
    confusion_matrix,
    melanoma_report,
    multiclass_report,
    reliability_bins,
    roc_curve,
)

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
ONE_HOT_COLUMNS: tuple[str, ...] = tuple(code.upper() for code in CLASSES)
METADATA_COLUMNS: tuple[str, ...] = ("age", "sex", "localization", "anatom_site_general")


class LabelsError(ValueError):
    """The labels CSV or the image folder does not match what was asked of it."""


@dataclass(frozen=True)
class Labels:
    image_ids: list[str]
    targets: np.ndarray  # class indices (multiclass) or 0/1 (binary)
    form: str  # "multiclass" | "binary"
    # Per image, when the CSV has any metadata column; None otherwise.
    metadata: list[meta.LesionMetadata] | None = None
    metadata_columns: tuple[str, ...] = ()
    sources: list[str] | None = None  # HAM10000's `dataset` column, when present


def _with_metadata(labels: Labels, columns: list[str], rows: list[dict[str, str]]) -> Labels:
    found = tuple(c for c in METADATA_COLUMNS if c in columns)
    if not found:
        return labels
    return Labels(
        labels.image_ids,
        labels.targets,
        labels.form,
        [meta.from_row(row) for row in rows],
        found,
        [row["dataset"] for row in rows] if "dataset" in columns else None,
    )


def read_labels(path: Path) -> Labels:
    """Labels in whichever of the three supported forms the header shows, with the
    lesions' metadata when the CSV has it."""
    if not path.is_file():
        raise LabelsError(f"labels file {path} not found")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    id_column = next((c for c in ("image_id", "image") if c in columns), None)
    if id_column is None:
        raise LabelsError(f"{path}: no 'image_id' or 'image' column (columns: {columns})")
    if not rows:
        raise LabelsError(f"{path}: no rows")
    ids = [row[id_column] for row in rows]

    if "dx" in columns:
        codes = [row["dx"].lower() for row in rows]
        unknown = sorted(set(codes) - set(CLASSES))
        if unknown:
            raise LabelsError(f"{path}: unknown dx values {unknown}; expected {list(CLASSES)}")
        targets = np.array([CLASSES.index(c) for c in codes])
        return _with_metadata(Labels(ids, targets, "multiclass"), columns, rows)

    if all(c in columns for c in ONE_HOT_COLUMNS):
        try:
            one_hot = np.array([[float(row[c]) for c in ONE_HOT_COLUMNS] for row in rows])
        except ValueError as error:
            raise LabelsError(f"{path}: non-numeric one-hot value ({error})") from None
        bad = np.flatnonzero(~np.isclose(one_hot.sum(1), 1.0) | (one_hot.max(1) < 0.5))
        if len(bad):
            raise LabelsError(f"{path}: rows {bad[:5].tolist()} are not one-hot")
        return _with_metadata(Labels(ids, one_hot.argmax(1), "multiclass"), columns, rows)

    if "melanoma" in columns:
        values = [row["melanoma"] for row in rows]
        bad = sorted({v for v in values if v not in ("0", "1", "0.0", "1.0")})
        if bad:
            raise LabelsError(f"{path}: 'melanoma' must be 0 or 1, found {bad[:5]}")
        targets = np.array([int(float(v)) for v in values])
        return _with_metadata(Labels(ids, targets, "binary"), columns, rows)

    raise LabelsError(
        f"{path}: columns {columns} match no supported form: (image_id, dx), "
        f"(image, {', '.join(ONE_HOT_COLUMNS)}) or (image_id, melanoma)"
    )


def find_images(image_dir: Path, image_ids: list[str]) -> list[Path]:
    """Path of each id, trying the id as a file name and then with the usual extensions;
    one error naming every missing image rather than a failure halfway through."""
    if not image_dir.is_dir():
        raise LabelsError(f"image folder {image_dir} not found")
    by_stem: dict[str, Path] = {}
    for path in image_dir.iterdir():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            by_stem.setdefault(path.stem, path)
            by_stem.setdefault(path.name, path)
    paths, missing = [], []
    for image_id in image_ids:
        path = by_stem.get(image_id) or by_stem.get(Path(image_id).stem)
        if path is None:
            missing.append(image_id)
        else:
            paths.append(path)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise LabelsError(f"{len(missing)} of {len(image_ids)} images not in {image_dir}: {shown}")
    return paths


def predict_folder(
    classifier: Classifier,
    paths: list[Path],
    batch_size: int = 32,
    metadata: list[meta.LesionMetadata] | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """Calibrated probabilities (n, 7) in path order, and mean per-image timings."""
    rows, timings = [], {"preprocess": 0.0, "inference": 0.0}
    for start in range(0, len(paths), batch_size):
        images = []
        for path in paths[start : start + batch_size]:
            with Image.open(path) as image:
                image.load()
                images.append(image)
        records = metadata[start : start + batch_size] if metadata is not None else None
        for prediction in classifier.predict_batch(images, batch_size, metadata=records):
            rows.append([prediction.probabilities[c] for c in CLASSES])
            for key in timings:
                timings[key] += prediction.timings_ms[key]
    return np.array(rows), {k: round(v / len(paths), 2) for k, v in timings.items()}


def tier_counts(classifier: Classifier, p_mel: np.ndarray, is_mel: np.ndarray) -> dict:
    """How many melanomas and non-melanomas land in each risk tier."""
    tiers = np.array([classifier.thresholds.tier(float(p)) for p in p_mel])
    return {
        group: {tier: int(((tiers == tier) & mask).sum()) for tier in RISK_TIERS}
        for group, mask in (("melanoma", is_mel), ("not_melanoma", ~is_mel))
    }


def evaluate(
    classifier: Classifier, labels: Labels, paths: list[Path], *, use_metadata: bool = True
) -> tuple[dict, np.ndarray]:
    """All metrics for the labels' form, and the probabilities they were computed from."""
    began = time.monotonic()
    records = labels.metadata if use_metadata else None
    probs, timings = predict_folder(classifier, paths, metadata=records)
    p_mel = probs[:, MELANOMA_INDEX]
    is_mel = (
        labels.targets == MELANOMA_INDEX
        if labels.form == "multiclass"
        else labels.targets.astype(bool)
    )
    thresholds = classifier.thresholds.as_dict()
    if labels.form == "multiclass":
        shown = np.array([classifier.decide(row) for row in probs], dtype=np.int64)
        metrics = multiclass_report(labels.targets, probs, thresholds, shown)
    else:
        metrics = {
            "note": "binary labels: seven-class metrics do not apply",
            "melanoma": melanoma_report(is_mel, p_mel, thresholds),
        }
    result = {
        "model_version": classifier.version,
        "labels_form": labels.form,
        "n_images": len(paths),
        "metrics": metrics,
        "risk_tiers": tier_counts(classifier, p_mel, is_mel),
        "metadata": {
            "columns": list(labels.metadata_columns),
            "read_by_model": bool(records is not None and classifier.uses_metadata),
        },
        "mean_timings_ms": timings,
        "seconds": round(time.monotonic() - began, 1),
    }
    if labels.metadata is not None:
        keys = group_keys(labels.metadata, labels.sources)
        result["melanoma_by_group"] = melanoma_by_group(
            is_mel, p_mel, classifier.thresholds.moderate, keys
        )
    return result, probs


def write_predictions(
    path: Path, labels: Labels, probs: np.ndarray, classifier: Classifier
) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            ["image_id", "label", "top_class", "risk_tier", *[f"p_{c}" for c in CLASSES]]
        )
        for image_id, target, row in zip(labels.image_ids, labels.targets, probs, strict=True):
            label = CLASSES[target] if labels.form == "multiclass" else int(target)
            tier = classifier.thresholds.tier(float(row[MELANOMA_INDEX]))
            writer.writerow(
                [image_id, label, CLASSES[classifier.decide(row)], tier, *[f"{p:.6f}" for p in row]]
            )


def write_plots(out: Path, labels: Labels, probs: np.ndarray, classifier: Classifier) -> list[Path]:
    """Confusion matrix, ROC and reliability diagram as PNGs; the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p_mel = probs[:, MELANOMA_INDEX]
    multiclass = labels.form == "multiclass"
    is_mel = labels.targets == MELANOMA_INDEX if multiclass else labels.targets.astype(bool)
    written = []

    # Confusion matrix: seven classes by arg-max, or melanoma yes/no at the moderate boundary.
    if multiclass:
        matrix = confusion_matrix(
            labels.targets, np.array([classifier.decide(row) for row in probs]), len(CLASSES)
        )
        names = list(CLASSES)
        title = "Confusion matrix (rows: truth, normalised per row)"
    else:
        flagged = p_mel >= classifier.thresholds.moderate
        matrix = confusion_matrix(is_mel.astype(int), flagged.astype(int), 2)
        names = ["not mel", "mel"]
        title = f"Melanoma at p(mel) >= {classifier.thresholds.moderate:.3f} (moderate tier)"
    rates = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            colour = "white" if rates[i, j] > 0.5 else "black"
            ax.text(j, i, f"{matrix[i, j]}\n{rates[i, j]:.2f}", ha="center", va="center",
                    fontsize=8, color=colour)  # fmt: skip
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    written.append(out / "confusion_matrix.png")
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)

    # ROC: melanoma with the tier boundaries marked, plus one-vs-rest curves for the rest.
    fig, ax = plt.subplots(figsize=(6, 6))
    if multiclass:
        for c, code in enumerate(CLASSES):
            positive = labels.targets == c
            if c != MELANOMA_INDEX and positive.any() and not positive.all():
                fpr, tpr, _ = roc_curve(positive, probs[:, c])
                ax.plot(fpr, tpr, lw=1, alpha=0.6, label=CLASS_NAMES[code])
    mel_auc = melanoma_report(is_mel, p_mel)["auc"]
    if mel_auc is not None:
        fpr, tpr, _ = roc_curve(is_mel, p_mel)
        ax.plot(fpr, tpr, lw=2.5, color="black", label=f"Melanoma (AUC {mel_auc:.3f})")
        for name, threshold in classifier.thresholds.as_dict().items():
            flagged = p_mel >= threshold
            ax.plot(flagged[~is_mel].mean(), flagged[is_mel].mean(), "o", ms=8,
                    label=f"{name} boundary p={threshold:.3f}")  # fmt: skip
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title("ROC, one class vs rest")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    written.append(out / "roc.png")
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)

    # Reliability: top-label for seven classes, melanoma yes/no for binary labels.
    if multiclass:
        correct, confidence = probs.argmax(1) == labels.targets, probs.max(1)
        what = "top-label"
    else:
        correct, confidence = (p_mel >= 0.5) == is_mel, np.maximum(p_mel, 1 - p_mel)
        what = "melanoma vs not"
    bins = reliability_bins(correct, confidence, ECE_BINS)
    ece = sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / len(correct)
    fig, ax = plt.subplots(figsize=(6, 6))
    centres = [(b["lower"] + b["upper"]) / 2 for b in bins]
    ax.bar(centres, [b["accuracy"] for b in bins], width=1 / ECE_BINS, edgecolor="black",
           alpha=0.7, label="accuracy")  # fmt: skip
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    for centre, b in zip(centres, bins, strict=True):
        if b["count"]:
            ax.text(centre, 0.02, str(b["count"]), ha="center", fontsize=6, rotation=90)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability ({what}), ECE {ece:.3f}, {ECE_BINS} bins")
    ax.legend(loc="upper left")
    fig.tight_layout()
    written.append(out / "reliability.png")
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="folder of images")
    parser.add_argument("--labels", type=Path, required=True, help="labels CSV")
    parser.add_argument("--out", type=Path, help="folder for metrics.json, CSV and plots")
    parser.add_argument("--model-dir", type=Path, help="ml/models/<version> (default: CURRENT)")
    parser.add_argument(
        "--threads", type=int, help="torch threads (default $ML_TORCH_THREADS or 1)"
    )
    parser.add_argument(
        "--no-metadata", action="store_true", help="ignore age/sex/site columns (image only)"
    )
    args = parser.parse_args(argv)

    try:
        labels = read_labels(args.labels)
        paths = find_images(args.images, labels.image_ids)
    except LabelsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.model_dir:
        classifier = Classifier.load(args.model_dir, threads=args.threads)
    else:
        classifier = Classifier.load_current(MODELS_ROOT, threads=args.threads)
    result, probs = evaluate(classifier, labels, paths, use_metadata=not args.no_metadata)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "metrics.json").write_text(text + "\n")
        write_predictions(args.out / "predictions.csv", labels, probs, classifier)
        for path in write_plots(args.out, labels, probs, classifier):
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
