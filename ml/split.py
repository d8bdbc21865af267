"""Make the fixed train/validation split: stratified by diagnosis, grouped by lesion.

HAM10000 holds several images of many lesions; a split by image would put the same lesion on
both sides and the validation score would measure memory, not generalisation.

    python -m ml.split [--data DIR] [--seed 42]
    python -m ml.split --halves      # validation -> select / report halves (by lesion)
    python -m ml.split --half-labels report runs/report_half.csv   # for ml.evaluate
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from sklearn.model_selection import StratifiedGroupKFold

from ml.data import HALVES_PATH, SPLIT_PATH, default_data_dir, read_metadata, read_split


def make_split(data_dir: Path, seed: int = 42, n_folds: int = 7) -> list[tuple[str, str, str, str]]:
    """Rows (image_id, lesion_id, dx, split); one fold of seven (~14-15%) is validation."""
    records = read_metadata(data_dir)
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    _, val_idx = next(
        folds.split(records, [r.dx for r in records], groups=[r.lesion_id for r in records])
    )
    val = set(val_idx.tolist())
    return [
        (r.image_id, r.lesion_id, r.dx, "val" if i in val else "train")
        for i, r in enumerate(records)
    ]


def make_val_halves(data_dir: Path, seed: int = 42) -> list[tuple[str, str]]:
    """Rows (image_id, half): the validation lesions in two halves, stratified by diagnosis
    and grouped by lesion, by a fixed seed that looked at no model."""
    val = [r for r in read_split()["val"]]
    folds = StratifiedGroupKFold(n_splits=2, shuffle=True, random_state=seed)
    _, report_idx = next(folds.split(val, [r.dx for r in val], groups=[r.lesion_id for r in val]))
    report = set(report_idx.tolist())
    return [(r.image_id, "report" if i in report else "select") for i, r in enumerate(val)]


def write_val_halves(data_dir: Path, seed: int = 42, out: Path = HALVES_PATH) -> None:
    rows = sorted(make_val_halves(data_dir, seed))
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image_id", "half"])
        writer.writerows(rows)
    report = sum(1 for row in rows if row[1] == "report")
    print(f"wrote {out}: {len(rows) - report} select, {report} report images")


def write_half_labels(data_dir: Path, half: str, out: Path) -> None:
    """A labels CSV of one validation half with HAM10000's metadata columns, the input
    `ml.evaluate` takes: every model is measured on the same lesions the same way."""
    from ml.data import read_metadata_rows, read_val_halves

    rows = read_metadata_rows(data_dir)
    columns = ["image_id", "dx", "age", "sex", "localization", "dataset"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for record in read_val_halves()[half]:
            writer.writerow([rows[record.image_id].get(c, "") for c in columns])
    print(f"wrote {out}: the {half} half")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=SPLIT_PATH)
    parser.add_argument(
        "--halves", action="store_true", help="write the validation halves from the saved split"
    )
    parser.add_argument(
        "--half-labels",
        nargs=2,
        metavar=("HALF", "CSV"),
        help="write a labels CSV (with metadata) of the select or report half",
    )
    args = parser.parse_args()
    if args.half_labels:
        if args.half_labels[0] not in ("select", "report"):
            parser.error(f"HALF must be select or report, not {args.half_labels[0]!r}")
        write_half_labels(args.data, args.half_labels[0], Path(args.half_labels[1]))
        return
    if args.halves:
        write_val_halves(args.data, args.seed)
        return
    rows = sorted(make_split(args.data, args.seed))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image_id", "lesion_id", "dx", "split"])
        writer.writerows(rows)
    val = sum(1 for row in rows if row[3] == "val")
    print(f"wrote {args.out}: {len(rows) - val} train, {val} validation images")


if __name__ == "__main__":
    main()
