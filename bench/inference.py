"""CPU latency, throughput and memory of the shipped classifier, as the worker runs it.

    python -m bench.inference [--model-dir ml/models/<version>] [--threads 1] [--iterations 50]

Prints, for the model named in ml/models/CURRENT (or --model-dir):
- single-image latency p50/p95 from a preprocessed tensor (the network and calibration) and
  end to end from a decoded PIL image (preprocessing included), at the HAM10000 size (200x150)
  and at a typical dermatoscope photo size (1024x768);
- Grad-CAM overlay latency (the worker draws two per analysis);
- batch-32 throughput in images/s, from tensors and end to end;
- peak resident memory of the process.
Each figure is measured with the card's test-time-augmentation setting and, for comparison,
the other one. Targets: <= 20 ms single-image, >= 40 images/s batched. Timings on a machine
that is busy with something else (a training run) are upper bounds.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ml.inference import MODELS_ROOT, Classifier

TARGET_SINGLE_MS = 20.0
TARGET_BATCH_IMG_S = 40.0


def sample_image(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A lesion-like picture: timing does not depend on content, only on size."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    blob = np.exp(
        -(((xx - width / 2) / (width / 4)) ** 2 + ((yy - height / 2) / (height / 4)) ** 2)
    )
    pixels = 220 - 140 * blob[..., None] + rng.normal(0, 10, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def latencies_ms(run: Callable[[], object], iterations: int, warm_up: int = 5) -> list[float]:
    for _ in range(warm_up):
        run()
    times = []
    for _ in range(iterations):
        began = time.perf_counter()
        run()
        times.append((time.perf_counter() - began) * 1000.0)
    return times


def percentiles(times: list[float]) -> str:
    q = statistics.quantiles(times, n=20, method="inclusive")
    return f"p50 {statistics.median(times):7.1f} ms   p95 {q[18]:7.1f} ms"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def bench(classifier: Classifier, iterations: int) -> dict[str, float]:
    size = classifier.config.input_size
    tensor = torch.randn(1, 3, size, size)
    batch = torch.randn(32, 3, size, size)
    small, large = sample_image((200, 150)), sample_image((1024, 768), seed=1)
    results = {}

    single = latencies_ms(lambda: classifier.predict_tensors(tensor), iterations)
    results["single_tensor_p50_ms"] = statistics.median(single)
    print(f"  single, preprocessed tensor      {percentiles(single)}")
    for name, image in (("200x150", small), ("1024x768", large)):
        times = latencies_ms(lambda image=image: classifier.predict(image), iterations)
        results[f"single_pil_{name}_p50_ms"] = statistics.median(times)
        print(f"  single, PIL {name:<9} end to end {percentiles(times)}")
    cam = latencies_ms(lambda: classifier.heatmap(small, "mel"), max(iterations // 5, 5), 2)
    print(f"  Grad-CAM overlay 200x150         {percentiles(cam)}")
    print(f"  peak RSS so far (one image at a time, as the worker runs) {peak_rss_mb():.0f} MB")

    reps = max(iterations // 10, 3)
    times = latencies_ms(lambda: classifier.predict_tensors(batch), reps, 1)
    results["batch32_tensor_img_s"] = 32_000.0 / statistics.median(times)
    print(f"  batch 32, tensors                {results['batch32_tensor_img_s']:7.1f} images/s")
    images = [small] * 32
    times = latencies_ms(lambda: classifier.predict_batch(images), reps, 1)
    results["batch32_pil_img_s"] = 32_000.0 / statistics.median(times)
    print(f"  batch 32, PIL 200x150 end to end {results['batch32_pil_img_s']:7.1f} images/s")
    print(f"  peak RSS so far (after batches of 32) {peak_rss_mb():.0f} MB")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="default: the version in ml/models/CURRENT")
    parser.add_argument(
        "--threads", type=int, help="torch threads (default $ML_TORCH_THREADS or 1)"
    )
    parser.add_argument("--iterations", type=int, default=50)
    args = parser.parse_args()

    if args.model_dir:
        classifier = Classifier.load(args.model_dir, threads=args.threads)
    else:
        classifier = Classifier.load_current(MODELS_ROOT, threads=args.threads)
    print(f"peak RSS after loading the model {peak_rss_mb():.0f} MB")
    print(
        f"model {classifier.version}, input {classifier.config.input_size}px, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s) of {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    shipped_tta = classifier.tta
    summary = {}
    for tta in (shipped_tta, not shipped_tta):
        classifier.tta = tta
        label = "shipped" if tta == shipped_tta else "for comparison"
        print(f"TTA {'on (4 views)' if tta else 'off'} ({label}):")
        summary[tta] = bench(classifier, args.iterations)
    classifier.tta = shipped_tta

    shipped = summary[shipped_tta]
    single_ok = shipped["single_pil_200x150_p50_ms"] <= TARGET_SINGLE_MS
    batch_ok = shipped["batch32_pil_img_s"] >= TARGET_BATCH_IMG_S
    print(
        f"targets (shipped setting): single <= {TARGET_SINGLE_MS:.0f} ms "
        f"{'met' if single_ok else 'MISSED'}, batch >= {TARGET_BATCH_IMG_S:.0f} images/s "
        f"{'met' if batch_ok else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
