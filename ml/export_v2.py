"""Export a v2 (`LesionNet`) checkpoint: fit on the select half, report on the report half.

    python -m ml.export_v2 --checkpoint runs/v2/best.pt --version ham10000-lite0-v2 \
        [--eval-sizes 160,192] [--no-current]
    python -m ml.export_v2 --checkpoint A/best.pt --checkpoint B/swa.pt --half-weights ...

Several `--checkpoint`s make an ensemble: the mean of the members' logits, calibrated and
decided on as one network (`ml.model.LesionEnsemble`).

Validation lesions are halved once (`ml/splits/ham10000_val_halves.csv`, by lesion, by a seed
that saw no model). Everything chosen is chosen on the "select" half: the checkpoint (in
training), the input size and the number of test-time views, the calibration (bias-corrected
temperature scaling), the balanced decision's alpha and the risk-tier thresholds. The card's
`validation` figures come from the "report" half, which chose nothing; the same figures with
every metadata field missing (`image_only`) and by patient group (`breakdowns`) too.

Logits are linear in the pooled image features, so one pass over the eight dihedral views of
each image gives the features for 1, 4 and 8 views at once, and the head turns them into
logits with and without metadata without another pass through the network.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ml import metadata as meta
from ml.breakdowns import group_keys, melanoma_by_group
from ml.calibration import (
    HIGH_SPECIFICITY,
    MODERATE_SENSITIVITY,
    fit_risk_thresholds,
    tier_definitions,
)
from ml.classes import CLASSES, MELANOMA_INDEX
from ml.data import (
    Record,
    default_data_dir,
    read_metadata_rows,
    read_split,
    read_val_halves,
    split_checksum,
)
from ml.export import (
    INTENDED_USE,
    TRAINING_DATA,
    _round,
    load_checkpoint,
    training_command,
    write_model_dir,
)
from ml.inference import DIHEDRAL_VIEWS, MODELS_ROOT, tta_views
from ml.metrics import balanced_accuracy, multiclass_report, top_label_ece
from ml.model import LesionEnsemble, LesionNet
from ml.preprocessing import PreprocessConfig, to_model_input
from ml.runtimes import CALIBRATION_IMAGES
from ml.runtimes import build as build_runtimes
from ml.selection import (
    calibrate,
    decide,
    decision_weights,
    fit_bcts,
    fit_decision_alpha,
    nll,
)
from ml.triage import LEVELS, NMSC_SENSITIVITY, TriageThresholds, fit_nmsc_threshold
from ml.triage import measure as measure_triage

VIEW_COUNTS: tuple[int, ...] = (1, 4, 8)
# As in v1: a smaller gain is within one dermatofibroma of noise and does not pay for the
# extra forward passes.
TTA_MIN_GAIN: float = 0.01


@torch.inference_mode()
def pooled_features(
    model: LesionNet,
    records: list[Record],
    image_dir: Path,
    config: PreprocessConfig,
    max_views: int = VIEW_COUNTS[-1],
) -> dict[int, np.ndarray]:
    """{views: (n, features)} image features averaged over the first 1, 4 and 8 views (those
    up to `max_views`: one view is an eighth of the work)."""
    counts = [v for v in VIEW_COUNTS if v <= max_views]
    out: dict[int, list[np.ndarray]] = {v: [] for v in counts}
    for start in range(0, len(records), 4):
        batch = []
        for record in records[start : start + 4]:
            with Image.open(image_dir / f"{record.image_id}.jpg") as image:
                batch.append(to_model_input(image, config))
        plain = torch.stack(batch)
        views = tta_views(plain, len(DIHEDRAL_VIEWS)) if counts[-1] > 1 else [plain]
        stacked = torch.cat(views[: counts[-1]]).contiguous(memory_format=torch.channels_last)
        feats = model.backbone(stacked).float().view(counts[-1], len(batch), -1)
        for v in counts:
            out[v].append(feats[:v].mean(0).numpy())
    return {v: np.concatenate(parts) for v, parts in out.items()}


@torch.inference_mode()
def head_logits(
    model: LesionNet, features: np.ndarray, records: list[meta.LesionMetadata] | None
) -> np.ndarray:
    """Logits from pooled image features; `records` None means every field missing."""
    pooled = torch.from_numpy(features)
    if model.use_metadata:
        vectors = torch.stack([meta.encode(r) for r in (records or [None] * len(features))])
        pooled = torch.cat([pooled, model.meta(vectors)], dim=1)
    return model.classifier(pooled).float().numpy()


def ensemble_logits(
    models: list[LesionNet],
    features: list[np.ndarray],
    records: list[meta.LesionMetadata] | None,
) -> np.ndarray:
    """The mean of each member's logits from its own pooled features (one member: its own)."""
    return np.mean(
        [head_logits(m, f, records) for m, f in zip(models, features, strict=True)], axis=0
    )


def train_prior() -> np.ndarray:
    counts = Counter(r.dx for r in read_split()["train"])
    total = sum(counts.values())
    return np.array([counts[c] / total for c in CLASSES])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", type=Path, action="append", required=True, help="repeat for an ensemble"
    )
    parser.add_argument(
        "--half-weights", action="store_true", help="store float16 weights (measured as stored)"
    )
    parser.add_argument("--version", required=True, help="e.g. ham10000-lite0-v2")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--models-root", type=Path, default=MODELS_ROOT)
    parser.add_argument("--eval-sizes", default="", help="comma-separated; default: train, +32")
    parser.add_argument("--no-current", action="store_true", help="leave CURRENT as it is")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the report-half predictions here")
    parser.add_argument(
        "--max-views",
        type=int,
        choices=VIEW_COUNTS,
        default=VIEW_COUNTS[-1],
        help="a latency budget: each view is one more forward pass per image (8 views cost "
        "8x; bench/inference.py's targets are <= 20 ms and >= 40 images/s)",
    )
    parser.add_argument(
        "--no-runtimes",
        action="store_true",
        help="skip the accelerated forms (python -m ml.runtimes builds them later)",
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    checkpoints = [load_checkpoint(path) for path in args.checkpoint]
    models: list[LesionNet] = []
    for path, checkpoint in zip(args.checkpoint, checkpoints, strict=True):
        if checkpoint["split_sha256"] != split_checksum():
            raise SystemExit(f"{path} was trained on another split than ml/splits/")
        member = LesionNet(checkpoint["architecture"], use_metadata=bool(checkpoint["metadata"]))
        state = checkpoint["model"]
        if args.half_weights:  # measure the weights exactly as they will be stored
            state = {k: v.half().float() if v.is_floating_point() else v for k, v in state.items()}
        member.load_state_dict(state, strict=True)
        models.append(member.eval().to(memory_format=torch.channels_last))
    checkpoint = checkpoints[0]
    model = models[0] if len(models) == 1 else LesionEnsemble(models)
    train_size = int(checkpoint["input_size"])
    sizes = [int(s) for s in args.eval_sizes.split(",") if s] or [train_size, train_size + 32]

    halves = read_val_halves()
    rows = read_metadata_rows(args.data)
    image_dir = args.data / "images"
    labels = {h: np.array([CLASSES.index(r.dx) for r in recs]) for h, recs in halves.items()}
    records = {h: [meta.from_row(rows[r.image_id]) for r in recs] for h, recs in halves.items()}
    sources = [rows[r.image_id].get("dataset", "") for r in halves["report"]]

    # 1. Features of both halves at each candidate size (one pass of 8 views per image).
    features: dict[int, dict[str, dict[int, np.ndarray]]] = {}
    for size in sizes:
        began = time.monotonic()
        config = PreprocessConfig(input_size=size)
        features[size] = {
            half: [pooled_features(m, recs, image_dir, config, args.max_views) for m in models]
            for half, recs in halves.items()
        }
        seconds = time.monotonic() - began
        n_images = sum(len(recs) for recs in halves.values())
        print(
            f"size {size}: features of {n_images} images x {args.max_views} view(s) "
            f"x {len(models)} network(s) in {seconds:.0f} s"
        )

    # 2. Size and views, on the select half: fewest views within TTA_MIN_GAIN of the best.
    # Each candidate is scored as it would be served: calibrated, then the balanced decision
    # fitted for it (scoring raw arg-max instead would judge a rule the portal never uses).
    use_meta = any(m.use_metadata for m in models)

    def logits_at(size: int, half: str, views: int, with_meta: bool = True) -> np.ndarray:
        feats = [f[views] for f in features[size][half]]
        return ensemble_logits(models, feats, records[half] if (use_meta and with_meta) else None)

    prior = train_prior()
    select_table = {}
    allowed = [v for v in VIEW_COUNTS if v <= args.max_views]
    for size in sizes:
        for views in allowed:
            logits = logits_at(size, "select", views)
            t, b = fit_bcts(logits, labels["select"])
            _, curve = fit_decision_alpha(calibrate(logits, t, b), labels["select"], prior)
            select_table[f"{size}px x{views}"] = max(curve.values())
    best = max(select_table.values())
    plain_best = max(select_table[f"{s}px x1"] for s in sizes)
    candidates = [
        (views, size)
        for size in sizes
        for views in allowed
        if select_table[f"{size}px x{views}"]
        >= (plain_best if views == 1 else plain_best + TTA_MIN_GAIN)
        and select_table[f"{size}px x{views}"] >= best - TTA_MIN_GAIN
    ]
    views, size = min(candidates) if candidates else (1, sizes[0])

    def logits_of(half: str, with_meta: bool) -> np.ndarray:
        return logits_at(size, half, views, with_meta)

    # 3. Calibration, decision rule and tier thresholds, on the select half.
    select_logits = logits_of("select", True)
    temperature, bias = fit_bcts(select_logits, labels["select"])
    select_probs = calibrate(select_logits, temperature, bias)
    alpha, alpha_curve = fit_decision_alpha(select_probs, labels["select"], prior)
    weights = decision_weights(prior, alpha)
    is_mel_select = labels["select"] == MELANOMA_INDEX
    thresholds = fit_risk_thresholds(is_mel_select, select_probs[:, MELANOMA_INDEX])
    triage_thresholds = TriageThresholds(
        moderate=thresholds.moderate,
        high=thresholds.high,
        nmsc=fit_nmsc_threshold(labels["select"], select_probs),
    )

    # 4. Everything reported, on the report half.
    def report(with_meta: bool) -> tuple[dict, np.ndarray]:
        probs = calibrate(logits_of("report", with_meta), temperature, bias)
        result = multiclass_report(
            labels["report"], probs, thresholds.as_dict(), decide(probs, weights)
        )
        return result, probs

    # For the record only (nothing is chosen from it): did test-time views help on lesions
    # that chose nothing? v1's export saw TTA lose 2.4 points and asked whether it was a bug.
    report_by_views = {}
    for n_views in allowed:
        logits = logits_at(size, "report", n_views)
        shown = decide(calibrate(logits, temperature, bias), weights)
        report_by_views[f"{size}px x{n_views}"] = balanced_accuracy(
            labels["report"], shown, len(CLASSES)
        )

    select_report = multiclass_report(labels["select"], select_probs)
    with_meta, report_probs = report(True)
    image_only, _ = report(False)
    is_mel = labels["report"] == MELANOMA_INDEX
    p_mel = report_probs[:, MELANOMA_INDEX]
    breakdowns = melanoma_by_group(
        is_mel, p_mel, thresholds.moderate, group_keys(records["report"], sources)
    )
    uncalibrated = calibrate(logits_of("report", True), 1.0)

    args_dict = checkpoint.get("args", {})
    config = PreprocessConfig(input_size=size)
    card = {
        "network": "lesionnet" if len(models) == 1 else "ensemble",
        "architecture": "+".join(c["architecture"] for c in checkpoints),
        "input_size": size,
        "preprocessing": config.as_dict(),
        "classes": list(CLASSES),
        "metadata": {
            "used": use_meta,
            "fields": list(meta.FIELDS),
            "site_groups": list(meta.SITE_GROUPS),
            "training_dropout_per_field": float(args_dict.get("meta_dropout", 0) or 0)
            if use_meta
            else None,
            "when_missing": "any field may be missing; the network was trained with each "
            "field dropped at random and is measured without any of them (image_only)",
        },
        "temperature": round(temperature, 6),
        "calibration_bias": [round(float(b), 6) for b in bias],
        "decision": {
            "rule": "shown class = argmax p(class) / prior(class)^alpha",
            "alpha": alpha,
            "prior": [round(float(p), 6) for p in prior],
            "class_weights": [round(float(w), 6) for w in weights],
            "select_balanced_accuracy_by_alpha": _round(alpha_curve),
        },
        "thresholds": thresholds.as_dict(),
        "tiers": _round(tier_definitions(thresholds, is_mel, p_mel)),
        "tier_targets": {
            "moderate_min_sensitivity": MODERATE_SENSITIVITY,
            "high_min_specificity": HIGH_SPECIFICITY,
            "fitted_on": "select half; the tiers' figures above are the report half's",
        },
        "triage": {
            "levels": list(LEVELS),
            "thresholds": triage_thresholds.as_dict(),
            "rules": {
                "urgent": "p(mel) >= high: melanoma suspected",
                "soon": "p(bcc) + p(akiec) >= nmsc (BCC or AK/Bowen's suspected), or "
                "p(mel) >= moderate (melanoma not excluded)",
                "routine": "none of the above; not a statement that the lesion is benign",
            },
            "fitted_on": "select half: high and moderate as the risk tiers, nmsc for >= "
            f"{NMSC_SENSITIVITY:.0%} of select-half BCC + AK/Bowen's",
            "report_half": _round(
                measure_triage(labels["report"], report_probs, triage_thresholds)
            ),
        },
        "tta": views if views > 1 else 0,
        "tta_views": list(DIHEDRAL_VIEWS[:views]),
        "selection": {
            "half": "select",
            "n": int(len(labels["select"])),
            "balanced_accuracy_by_size_and_views": _round(select_table),
            "chosen": f"{size}px x{views}",
            "rule": f"fewest views within {TTA_MIN_GAIN} of the best; more views only when "
            f"they gain >= {TTA_MIN_GAIN} over one view",
            "report_half_balanced_accuracy_by_views": _round(report_by_views),
        },
        "split_sha256": checkpoint["split_sha256"],
        "training_command": training_command(args_dict),
        "members": [
            {
                "architecture": c["architecture"],
                "metadata": bool(c["metadata"]),
                "weights_from": c.get("weights_from"),
                "epoch": c.get("epoch"),
                "training_command": training_command(c.get("args", {})),
            }
            for c in checkpoints
        ],
        "training_epochs": checkpoint.get("epoch"),
        "weights_from": checkpoint.get("weights_from"),
        "checkpoint_select_balanced_accuracy": checkpoint.get("select_balanced_accuracy"),
        "calibration": {
            "method": "bias-corrected temperature scaling, NLL on the select half",
            "nll_before": round(nll(logits_of("report", True), labels["report"], 1.0), 4),
            "nll_after": round(
                nll(logits_of("report", True), labels["report"], temperature, bias), 4
            ),
            "ece_top_label_before": round(top_label_ece(labels["report"], uncalibrated), 4),
            "ece_top_label_after": round(top_label_ece(labels["report"], report_probs), 4),
            "measured_on": "report half",
        },
        "validation_half": "report: validation lesions that chose nothing",
        "validation": _round(with_meta),
        "image_only": _round(image_only),
        "breakdowns": _round(breakdowns),
        "data": TRAINING_DATA,
        "intended_use": INTENDED_USE,
    }
    card["software"] = {
        "torch": torch.__version__,
        "timm": __import__("timm").__version__,
    }
    if len(models) == 1:
        del card["members"]
    model_dir = write_model_dir(
        args.models_root,
        args.version,
        model.state_dict(),
        card,
        not args.no_current,
        half=args.half_weights,
    )
    if not args.no_runtimes:
        # The forms worth serving (torch-compile, torch-int8, onnx-fp32, onnx-int8), each with
        # its parity on the validation split; the card's `runtime` stays torch until chosen.
        build_runtimes(model_dir, args.data, CALIBRATION_IMAGES, args.threads)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        np.savez(args.out / "report_half.npz", labels=labels["report"], probs=report_probs)
    summary = {
        "model_dir": str(model_dir),
        "chosen": card["selection"]["chosen"],
        "alpha": alpha,
        "temperature": card["temperature"],
        # What a choice between exports may look at: the select half only.
        "select_balanced_accuracy": select_table[card["selection"]["chosen"]],
        "select_melanoma_auc": select_report["melanoma"]["auc"],
        "select_macro_auc": select_report.get("macro_auc"),
        "report_balanced_accuracy": with_meta["balanced_accuracy"],
        "report_balanced_accuracy_image_only": image_only["balanced_accuracy"],
        "report_melanoma_auc": with_meta["melanoma"]["auc"],
        "report_spec_at_95_sens": with_meta["melanoma"]["specificity_at_95_sensitivity"],
        "report_ece_top_label": with_meta["ece_top_label"],
    }
    print(json.dumps(_round(summary), indent=2))


if __name__ == "__main__":
    main()
