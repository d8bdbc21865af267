"""Every runtime of the shipped model side by side, in one run, on this CPU.

    python -m bench.runtimes [--model-dir ml/models/<version>] [--iterations 60]

For each runtime the card lists (torch, onnx-fp32, onnx-int8; `python -m ml.runtimes` builds
them), in a fresh process each so that peak memory is that runtime's own:
- single-image latency p50/p95 from a decoded 200x150 image (preprocessing included), 1 thread;
- batch-32 throughput from preprocessed inputs with 1 and with 2 threads;
- peak resident memory of the process;
- each as a ratio to torch eager measured in the same run.
It prints the CPU's instruction sets (AVX2, AVX-512, VNNI, AMX), because the best runtime
depends on them, and a roofline: the model's multiply-adds per image against what the cores
could do at their peak fp32 (and int8 VNNI) rate. Figures on a busy machine are upper bounds.
Issue 15's targets, as ratios to torch eager: batch throughput >= 4x and single-image latency
<= 1/3 on a CPU with VNNI; >= 2x and <= 1/2 on AVX2 only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")


def cpu_flags() -> dict[str, bool]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return {flag: flag in flags for flag in FLAGS}


def cpu_model_and_mhz() -> tuple[str, float]:
    name, mhz = "unknown", 0.0
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and name == "unknown":
            name = line.split(":", 1)[1].strip()
        if line.startswith("cpu MHz") and not mhz:
            mhz = float(line.split(":", 1)[1])
    return name, mhz


def child(model_dir: Path | None, runtime: str, threads: int, iterations: int) -> dict:
    """Measure one runtime at one thread count in this process; return the figures."""
    import numpy as np

    from bench.inference import sample_image
    from ml.inference import MODELS_ROOT, Classifier

    if model_dir is None:
        model_dir = MODELS_ROOT / (MODELS_ROOT / "CURRENT").read_text().strip()
    began = time.perf_counter()
    classifier = Classifier.load(model_dir, threads=threads, runtime=runtime)
    load_s = time.perf_counter() - began
    image = sample_image((200, 150))
    for _ in range(5):
        classifier.predict(image)
    single = []
    for _ in range(iterations):
        t = time.perf_counter()
        classifier.predict(image)
        single.append((time.perf_counter() - t) * 1000.0)
    import torch

    size = classifier.config.input_size
    batch = torch.from_numpy(np.random.default_rng(0).normal(size=(32, 3, size, size))).float()
    classifier.predict_tensors(batch)
    rates = []
    for _ in range(max(iterations // 10, 3)):
        t = time.perf_counter()
        classifier.predict_tensors(batch)
        rates.append(32.0 / (time.perf_counter() - t))
    return {
        "runtime": runtime,
        "threads": threads,
        "load_s": round(load_s, 2),
        "single_p50_ms": statistics.median(single),
        "single_p95_ms": statistics.quantiles(single, n=20, method="inclusive")[18],
        "batch32_img_s": statistics.median(rates),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def run_child(model_dir: Path | None, runtime: str, threads: int, iterations: int) -> dict:
    command = [sys.executable, "-m", "bench.runtimes", "--child", runtime, str(threads)]
    command += ["--iterations", str(iterations)]
    if model_dir:
        command += ["--model-dir", str(model_dir)]
    # Our own interpreter and module, arguments from this process: nothing untrusted.
    out = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    return json.loads(out.stdout.strip().splitlines()[-1])


def multiply_adds(model_dir: Path | None) -> tuple[float, dict]:
    """Multiply-adds of one image through the network (fvcore-free: counted from the convs'
    and linears' shapes with forward hooks) and the card."""
    import torch

    from ml.inference import MODELS_ROOT, Classifier

    classifier = (
        Classifier.load(model_dir, threads=1, runtime="torch")
        if model_dir
        else Classifier.load_current(MODELS_ROOT, threads=1)
    )
    total = 0

    def count(module, inputs, output) -> None:
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            per_out = module.in_channels // module.groups * module.kernel_size[0]
            total += output.numel() * per_out * module.kernel_size[1]
        elif isinstance(module, torch.nn.Linear):
            total += output.numel() * module.in_features

    handles = [
        m.register_forward_hook(count)
        for m in classifier.model.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    size = classifier.config.input_size
    with torch.inference_mode():
        classifier.model(torch.zeros(1, 3, size, size))
    for handle in handles:
        handle.remove()
    return float(total), classifier.card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--child", nargs=2, metavar=("RUNTIME", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        runtime, threads = args.child[0], int(args.child[1])
        print(json.dumps(child(args.model_dir, runtime, threads, args.iterations)))
        return

    flags = cpu_flags()
    name, mhz = cpu_model_and_mhz()
    macs, card = multiply_adds(args.model_dir)
    runtimes = ["torch"] + [r for r, e in card.get("runtimes", {}).items() if e.get("servable")]
    skipped = [r for r, e in card.get("runtimes", {}).items() if not e.get("servable")]
    vnni = flags["avx512_vnni"] or flags["avx_vnni"]
    print(f"CPU: {name}, {os.cpu_count()} logical CPUs, {mhz:.0f} MHz reported")
    print("instruction sets: " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in flags.items()))
    print(f"model {card['version']}: {macs / 1e6:.0f} M multiply-adds per image")
    print(f"load average at start {os.getloadavg()[0]:.2f} (busy machine: figures are bounds)")
    if skipped:
        print(f"not measured (failed parity, not servable): {', '.join(skipped)}")

    rows = []
    for runtime in runtimes:
        for threads in (1, 2):
            rows.append(run_child(args.model_dir, runtime, threads, args.iterations))
    base = {r["threads"]: r for r in rows if r["runtime"] == "torch"}
    print()
    print(
        f"{'runtime':<10} {'thr':>3} {'single p50':>11} {'p95':>8} {'x torch':>8} "
        f"{'batch32 img/s':>14} {'x torch':>8} {'peak RSS':>9}"
    )
    for r in rows:
        b = base[r["threads"]]
        print(
            f"{r['runtime']:<10} {r['threads']:>3} {r['single_p50_ms']:>8.1f} ms "
            f"{r['single_p95_ms']:>5.1f} ms {r['single_p50_ms'] / b['single_p50_ms']:>8.2f} "
            f"{r['batch32_img_s']:>14.1f} {r['batch32_img_s'] / b['batch32_img_s']:>8.2f} "
            f"{r['peak_rss_mb']:>6.0f} MB"
        )
    # Roofline, compute side: 2 FMA units x 16 fp32 lanes x 2 flops with AVX-512 (8 lanes
    # with AVX2); VNNI does 4 int8 multiply-adds per 32-bit lane per instruction.
    lanes = 16 if flags["avx512f"] else 8
    cores = os.cpu_count() or 1
    peak_fp32 = cores * mhz * 1e6 * 2 * lanes * 2
    peak_int8 = peak_fp32 * 4 if vnni else peak_fp32
    print()
    for r in rows:
        if r["threads"] != 2:
            continue
        achieved = r["batch32_img_s"] * macs * 2
        peak = peak_int8 if "int8" in r["runtime"] else peak_fp32
        print(
            f"roofline {r['runtime']:<10}: {achieved / 1e9:6.1f} GFLOP/s achieved of "
            f"{peak / 1e9:6.0f} peak on {cores} cores ({100 * achieved / peak:4.1f}%); "
            f"ceiling {peak / (macs * 2):6.0f} img/s"
        )
    # Ratios within one thread count (a busy machine hurts 2-thread runs most); the best of
    # the thread counts is what a worker configured for this CPU would get.
    need_batch, need_single = (4.0, 1 / 3) if vnni else (2.0, 1 / 2)
    print()
    for threads in (1, 2):
        fast = [r for r in rows if r["threads"] == threads and r["runtime"] != "torch"]
        if not fast:
            print(f"{threads} thread(s): no accelerated runtime passed parity")
            continue
        batch = max(fast, key=lambda r: r["batch32_img_s"])
        single = min(fast, key=lambda r: r["single_p50_ms"])
        batch_ratio = batch["batch32_img_s"] / base[threads]["batch32_img_s"]
        single_ratio = single["single_p50_ms"] / base[threads]["single_p50_ms"]
        print(
            f"{threads} thread(s), targets ({'VNNI' if vnni else 'AVX2 only'}): batch >= "
            f"{need_batch:.0f}x torch: {batch_ratio:.2f}x with {batch['runtime']} "
            f"{'met' if batch_ratio >= need_batch else 'MISSED'}; single <= {need_single:.2f}x: "
            f"{single_ratio:.2f}x with {single['runtime']} "
            f"{'met' if single_ratio <= need_single else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
