"""Turn a training checkpoint into a servable model directory with its model card.

    python -m ml.export --checkpoint runs/lite0/best.pt --version ham10000-lite0-v1 [--data DIR]
        [--tta auto|on|off] [--no-current]

Steps, all on the committed validation split with serving preprocessing:
1. validation logits, plain and with test-time augmentation (TTA); TTA is kept only if it
   raises balanced accuracy by at least TTA_MIN_GAIN, because it costs four forward passes;
2. temperature fitted on the chosen logits (ml.calibration);
3. melanoma risk-tier thresholds on the calibrated p(mel);
4. every metric of ml.metrics on the calibrated probabilities.

Writes `ml/models/<version>/weights.pt` (fp32 state dict) and `card.json`, and points
`ml/models/CURRENT` at the version unless --no-current. Running it again with the same version
overwrites that version, so re-exporting from a later checkpoint is the same command.

The validation set also chose the checkpoint (early stopping), so its figures are slightly
optimistic; `python -m ml.evaluate` on an independent set (ISIC 2018 test) is the honest number.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ml.calibration import (
    HIGH_SPECIFICITY,
    MODERATE_SENSITIVITY,
    fit_risk_thresholds,
    fit_temperature,
    negative_log_likelihood,
    softmax,
    tier_definitions,
)
from ml.classes import CLASSES, MELANOMA_INDEX
from ml.data import Record, default_data_dir, read_split, split_checksum
from ml.inference import (
    CARD_FILE,
    CURRENT_FILE,
    MODELS_ROOT,
    TTA_VIEWS,
    WEIGHTS_FILE,
    logits_per_view,
)
from ml.metrics import balanced_accuracy, multiclass_report, top_label_ece
from ml.model import ARCHITECTURE
from ml.preprocessing import PreprocessConfig, to_model_input

# One validation dermatofibroma (17 of them) moves balanced accuracy by 0.84 points; a smaller
# TTA gain is indistinguishable from that and does not pay for 4x the inference time.
TTA_MIN_GAIN: float = 0.01
MAX_WEIGHTS_MB: float = 25.0
# What every card (v1 and v2) says of its data and its use.
TRAINING_DATA: dict[str, str] = {
    "dataset": "HAM10000 (ISIC 2018 Task 3 training set)",
    "licence": "CC BY-NC 4.0",
    "citation": "Tschandl P, Rosendahl C, Kittler H. The HAM10000 dataset, a large "
    "collection of multi-source dermatoscopic images of common pigmented skin "
    "lesions. Sci Data 5, 180161 (2018).",
}
INTENDED_USE = (
    "Decision support for clinicians triaging dermoscopic images of "
    "pigmented skin lesions. Not a diagnosis; not clinically validated."
)


def load_checkpoint(path: Path) -> dict:
    """Read the file in one go before unpickling: training rewrites best.pt whenever
    validation improves, and a half-read file would fail confusingly later. weights_only:
    a checkpoint is tensors, numbers and strings, and nothing else should run on load."""
    data = path.read_bytes()
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def training_command(args: dict[str, str]) -> str:
    """The `python -m ml.train` command line that produced the checkpoint, from its args."""
    parts = ["python -m ml.train"]
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        if key == "extra_data":  # a list of folders: the flag once per folder
            parts += [f"{flag} {folder}" for folder in re.findall(r"'([^']+)'", value)]
        elif value in ("True", "False"):
            if value == "True":
                parts.append(flag)
        else:
            parts.append(f"{flag} {value}")
    return " ".join(parts)


@torch.inference_mode()
def validation_logits(
    model: torch.nn.Module,
    records: Sequence[Record],
    image_dir: Path,
    config: PreprocessConfig,
    batch_size: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """(plain logits, TTA-averaged logits) of the records, preprocessed exactly as served."""
    plain, averaged = [], []
    for start in range(0, len(records), batch_size):
        batch = []
        for record in records[start : start + batch_size]:
            with Image.open(image_dir / f"{record.image_id}.jpg") as image:
                batch.append(to_model_input(image, config))
        views = logits_per_view(model, torch.stack(batch))
        plain.append(views[0])
        averaged.append(views.mean(0))
    return torch.cat(plain).numpy(), torch.cat(averaged).numpy()


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write beside the target and rename over it, so the worker never reads half a file."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        write(Path(tmp))
        # mkstemp makes the file private; the web and worker processes must read it.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_model_dir(
    models_root: Path,
    version: str,
    state_dict: dict[str, torch.Tensor],
    card: dict,
    set_current: bool = True,
    half: bool = False,
) -> Path:
    """Write weights.pt and card.json (with the weights' sha256) under models_root/version,
    and CURRENT if asked. Overwrites an existing version of the same name. `half` stores
    floating tensors as float16 (an ensemble's members within the size limit); loading casts
    them back to float32, and the card's figures are measured after that round trip."""
    if not version or "/" in version or version.startswith("."):
        raise ValueError(f"bad model version {version!r}")
    model_dir = models_root / version
    model_dir.mkdir(parents=True, exist_ok=True)
    weights = {
        key: (
            (value.half() if half else value.float()) if value.is_floating_point() else value
        ).contiguous()
        for key, value in state_dict.items()
    }
    weights_path = model_dir / WEIGHTS_FILE
    _atomic_write(weights_path, lambda tmp: torch.save(weights, tmp))
    size_mb = weights_path.stat().st_size / 1e6
    if size_mb > MAX_WEIGHTS_MB:
        raise ValueError(f"{weights_path} is {size_mb:.1f} MB, over the {MAX_WEIGHTS_MB} MB limit")
    card = {
        **card,
        "version": version,
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": hashlib.sha256(weights_path.read_bytes()).hexdigest(),
        "weights_mb": round(size_mb, 2),
    }
    text = json.dumps(card, indent=2) + "\n"
    _atomic_write(model_dir / CARD_FILE, lambda tmp: tmp.write_text(text))
    if set_current:
        _atomic_write(models_root / CURRENT_FILE, lambda tmp: tmp.write_text(version + "\n"))
    return model_dir


def _round(value: object, digits: int = 4) -> object:
    """Round floats inside nested dicts and lists for a readable card."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: _round(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v, digits) for v in value]
    return value


def build_card(
    *,
    checkpoint: dict,
    config: PreprocessConfig,
    labels: np.ndarray,
    plain_logits: np.ndarray,
    tta_logits: np.ndarray,
    tta: str = "auto",
) -> dict:
    """Everything the portal and a reader of the model card need, measured on validation.

    `tta` "auto" keeps test-time augmentation when it gains at least TTA_MIN_GAIN balanced
    accuracy; "on"/"off" force it (e.g. off to meet a latency budget: it costs 4x)."""
    plain_bacc = balanced_accuracy(labels, plain_logits.argmax(1), len(CLASSES))
    tta_bacc = balanced_accuracy(labels, tta_logits.argmax(1), len(CLASSES))
    gain = tta_bacc - plain_bacc
    if tta == "auto":
        use_tta = gain >= TTA_MIN_GAIN
        decision = f"auto: gain {gain:+.4f} {'>=' if use_tta else '<'} {TTA_MIN_GAIN}"
    elif tta in ("on", "off"):
        use_tta = tta == "on"
        decision = f"forced {tta} by --tta (gain {gain:+.4f})"
    else:
        raise ValueError(f"tta must be auto, on or off, not {tta!r}")
    logits = tta_logits if use_tta else plain_logits

    temperature = fit_temperature(logits, labels)
    probs = softmax(logits, temperature)
    is_mel = labels == MELANOMA_INDEX
    p_mel = probs[:, MELANOMA_INDEX]
    thresholds = fit_risk_thresholds(is_mel, p_mel)
    report = multiclass_report(labels, probs, thresholds.as_dict())
    uncalibrated = softmax(logits, 1.0)
    args = checkpoint.get("args", {})
    return {
        "architecture": ARCHITECTURE,
        "input_size": config.input_size,
        "preprocessing": config.as_dict(),
        "classes": list(CLASSES),
        "temperature": round(temperature, 6),
        "thresholds": thresholds.as_dict(),
        "tiers": _round(tier_definitions(thresholds, is_mel, p_mel)),
        "tier_targets": {
            "moderate_min_sensitivity": MODERATE_SENSITIVITY,
            "high_min_specificity": HIGH_SPECIFICITY,
        },
        "tta": use_tta,
        "tta_views": list(TTA_VIEWS) if use_tta else ["identity"],
        "tta_validation_balanced_accuracy": {
            "without": round(plain_bacc, 4),
            "with": round(tta_bacc, 4),
            "min_gain_to_use": TTA_MIN_GAIN,
            "decision": decision,
        },
        "split_sha256": checkpoint["split_sha256"],
        "training_command": training_command(args),
        "training_epochs": checkpoint.get("epoch"),
        "weights_from": checkpoint.get("weights_from"),
        "checkpoint_val_balanced_accuracy": checkpoint.get("val_balanced_accuracy"),
        "calibration": {
            "method": "temperature scaling, NLL on the validation split",
            "nll_before": round(negative_log_likelihood(logits, labels, 1.0), 4),
            "nll_after": round(negative_log_likelihood(logits, labels, temperature), 4),
            "ece_top_label_before": round(top_label_ece(labels, uncalibrated), 4),
            "ece_top_label_after": round(top_label_ece(labels, probs), 4),
        },
        "validation": _round(report),
        "data": TRAINING_DATA,
        "intended_use": INTENDED_USE,
        "exported_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "software": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "timm": __import__("timm").__version__,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--version", required=True, help="e.g. ham10000-lite0-v1")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--models-root", type=Path, default=MODELS_ROOT)
    parser.add_argument("--no-current", action="store_true", help="leave CURRENT as it is")
    parser.add_argument(
        "--tta",
        choices=("auto", "on", "off"),
        default="auto",
        help="test-time augmentation: auto keeps it if it gains >= TTA_MIN_GAIN on validation",
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    checkpoint = load_checkpoint(args.checkpoint)
    if checkpoint["split_sha256"] != split_checksum():
        raise SystemExit(
            "the checkpoint was trained on another split than ml/splits/ (sha256 "
            f"{checkpoint['split_sha256'][:12]} vs {split_checksum()[:12]}): its validation "
            "images may be training images, so temperature and thresholds would be wrong"
        )
    config = PreprocessConfig(input_size=int(checkpoint["input_size"]))
    import timm

    model = timm.create_model(ARCHITECTURE, pretrained=False, num_classes=len(CLASSES))
    model.load_state_dict(checkpoint["model"], strict=True)
    model = model.eval().to(memory_format=torch.channels_last)

    records = read_split()["val"]
    labels = np.array([CLASSES.index(r.dx) for r in records])
    began = time.monotonic()
    plain, tta = validation_logits(model, records, args.data / "images", config)
    print(f"validation logits for {len(records)} images in {time.monotonic() - began:.0f} s")

    card = build_card(
        checkpoint=checkpoint,
        config=config,
        labels=labels,
        plain_logits=plain,
        tta_logits=tta,
        tta=args.tta,
    )
    model_dir = write_model_dir(
        args.models_root, args.version, model.state_dict(), card, not args.no_current
    )
    validation = card["validation"]
    print(
        json.dumps(
            {
                "model_dir": str(model_dir),
                "current": not args.no_current,
                "temperature": card["temperature"],
                "thresholds": card["thresholds"],
                "tta": card["tta_validation_balanced_accuracy"] | {"used": card["tta"]},
                "balanced_accuracy": validation["balanced_accuracy"],
                "melanoma_auc": validation["melanoma"]["auc"],
                "macro_auc": validation["macro_auc"],
                "ece_top_label": validation["ece_top_label"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
