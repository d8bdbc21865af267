"""Worker time for one huge upload: a flat 7000 x 7000 PNG (62 KB on disk, 147 MB decoded).

    python -m bench.huge_image [--model-dir ml/models/<version>] [--side 7000] [--repeat 3]

What the worker does for one analysis (decode, predict, the two Grad-CAM overlays), timed two
ways: on the working copy the portal now analyses (ml.imaging.working_copy, at most
WORKING_MAX_PIXELS) and, for comparison, at full resolution as before issue 11 (19 s, 13.5 s of
it the overlays, on the machine of the outside-style test). Prints the working resolution, the
median seconds of each step and the process's peak resident memory. Timings on a machine busy
with something else (a training run) are upper bounds; the tests assert resolutions, not times.
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import time
from pathlib import Path

from PIL import Image

from ml.imaging import WORKING_MAX_PIXELS, working_copy
from ml.inference import MODELS_ROOT, Classifier


def flat_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (196, 150, 128)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def one_analysis(classifier: Classifier, data: bytes, max_pixels: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    began = time.perf_counter()
    picture = working_copy(Image.open(io.BytesIO(data)), max_pixels)
    timings["decode"] = time.perf_counter() - began
    began = time.perf_counter()
    prediction = classifier.predict(picture)
    timings["predict"] = time.perf_counter() - began
    began = time.perf_counter()
    for target in {prediction.top_class, "mel"}:
        classifier.heatmap(picture, target, max_pixels=max_pixels)
    timings["heatmaps"] = time.perf_counter() - began
    timings["total"] = sum(timings.values())
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--side", type=int, default=7000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    classifier = (
        Classifier.load(args.model_dir) if args.model_dir else Classifier.load_current(MODELS_ROOT)
    )
    data = flat_png(args.side)
    print(f"{args.side} x {args.side} flat PNG: {len(data) / 1024:.0f} KB")
    for label, max_pixels in (
        ("working copy", WORKING_MAX_PIXELS),
        ("full resolution", args.side * args.side),
    ):
        runs = [one_analysis(classifier, data, max_pixels) for _ in range(args.repeat)]
        size = working_copy(Image.new("RGB", (args.side, args.side)), max_pixels).size
        medians = {step: statistics.median(r[step] for r in runs) for step in runs[0]}
        steps = ", ".join(f"{step} {seconds:.2f} s" for step, seconds in medians.items())
        print(f"{label:>16}: analysed at {size[0]} x {size[1]}; {steps}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
