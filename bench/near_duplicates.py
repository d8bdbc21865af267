"""How far apart the perceptual hashes of the same picture and of different lesions are: where
the duplicate warning's thresholds (diagnosis.image_fingerprint) come from.

    .venv/bin/python bench/near_duplicates.py [--data ../shared/data/ham10000] [--sample 300]

Over HAM10000 it prints, for each threshold in bits, the share of re-encodings of one picture
caught (JPEG quality 50-85, resized 0.7-2x, PNG with a slight brightness change, on `--sample`
images), the share of pairs of images HAM10000 files under the same lesion (often a second
photograph, sometimes the same picture cropped), and the share of all pairs of images of
different lesions (50 million) that would be flagged: the false warnings.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diagnosis.image_fingerprint import as_words, difference_hash  # noqa: E402
from ml.data import default_data_dir  # noqa: E402

THRESHOLDS = (8, 12, 16, 20, 24, 28, 32)


def _reencodings(image: Image.Image) -> list[Image.Image]:
    out = []
    for quality, scale in ((60, 1.0), (85, 2.0), (50, 0.7)):
        resized = image.resize((int(image.width * scale), int(image.height * scale)))
        buffer = io.BytesIO()
        resized.save(buffer, "JPEG", quality=quality)
        out.append(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    buffer = io.BytesIO()
    ImageEnhance.Brightness(image).enhance(1.05).save(buffer, "PNG")
    out.append(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return out


def _bits(a: str, b: str) -> int:
    return int(np.bitwise_count(as_words([a]) ^ as_words([b])).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--sample", type=int, default=300)
    args = parser.parse_args()
    with open(args.data / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))

    def load(image_id: str) -> Image.Image:
        with Image.open(args.data / "images" / f"{image_id}.jpg") as image:
            return image.convert("RGB")

    hashes = [difference_hash(load(r["image_id"])) for r in rows]
    lesions = np.array([r["lesion_id"] for r in rows])
    rng = random.Random(0)
    reencoded = []
    for i in rng.sample(range(len(rows)), args.sample):
        image = load(rows[i]["image_id"])
        reencoded += [_bits(hashes[i], difference_hash(copy)) for copy in _reencodings(image)]
    words = as_words(hashes)
    other = np.zeros(257, dtype=np.int64)
    same = np.zeros(257, dtype=np.int64)
    for i in range(len(rows) - 1):
        bits = np.bitwise_count(words[i + 1 :] ^ words[i]).sum(axis=1)
        same_lesion = lesions[i + 1 :] == lesions[i]
        other += np.bincount(bits[~same_lesion], minlength=257)
        same += np.bincount(bits[same_lesion], minlength=257)
    reencoded_arr = np.array(reencoded)
    print(
        f"{len(reencoded)} re-encodings, {same.sum()} same-lesion pairs, "
        f"{other.sum()} pairs of different lesions"
    )
    print("bits  re-encodings caught  same-lesion pairs  different-lesion pairs (rate)")
    for t in THRESHOLDS:
        print(
            f"{t:4d}  {np.mean(reencoded_arr <= t):19.3f}  {same[: t + 1].sum() / same.sum():17.3f}"
            f"  {other[: t + 1].sum():9d} ({other[: t + 1].sum() / other.sum():.1e})"
        )


if __name__ == "__main__":
    main()
