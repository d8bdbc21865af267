"""Make the fixed train/validation split: stratified by diagnosis, grouped by lesion.

HAM10000 holds several images of many lesions; a split by image would put the same lesion on
both sides and the validation score would measure memory, not generalisation.

    python -m ml.split [--data DIR] [--seed 42]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from sklearn.model_selection import StratifiedGroupKFold

from ml.data import SPLIT_PATH, default_data_dir, read_metadata


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=SPLIT_PATH)
    args = parser.parse_args()
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
