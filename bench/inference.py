"""Every runtime of the shipped classifier side by side, in one run, on this CPU.

    python -m bench.inference [--model-dir ml/models/<version>] [--iterations 40] [--json PATH]

For torch eager and each form the card calls servable (torch-compile, torch-int8, onnx-fp32,
onnx-int8; `python -m ml.runtimes` builds them), each in a fresh process (`--one RUNTIME
--threads N`) so that its peak resident memory is its own:
- single-image latency p50/p95 from a decoded 200x150 image, preprocessing included;
- batch-32 throughput (preprocessed tensors through the network and calibration);
- the heatmap's latency (Grad-CAM for the torch forms, the exported CAM for ONNX);
- peak resident memory and the time to load (torch.compile compiles at load);
with 1 and with 2 threads, each also as a ratio to torch eager measured in the same run.

It prints the CPU's model and instruction sets (AVX2, AVX-512F, AVX-512 VNNI, AVX-VNNI, AMX),
because the best runtime depends on them, and a roofline: the model's FLOPs per image
(torch.utils.flop_counter), the cores' peak fp32 FLOP/s and int8 op/s, a measured memory
bandwidth, the images/s those allow, and what each runtime reached. Issue 15's targets, as
ratios to torch eager: batch throughput >= 4x and single-image latency <= 1/3 on a CPU with
VNNI; >= 2x and <= 1/2 on AVX2 only. Figures taken while other work shares the CPU are upper
bounds for latency and lower bounds for throughput; the load average is printed.
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
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from bench.stats import percentile
from ml.runtimes import FLOAT_STAGES

BATCH = 32
THREADS = (1, 2)
FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512F",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "amx_int8": "AMX-INT8",
}
TARGETS = {True: (4.0, 1 / 3), False: (2.0, 1 / 2)}  # VNNI?: (batch x, single x)


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


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not getrusage's ru_maxrss: Linux carries
    ru_maxrss across exec, so a child started by a parent that had loaded the model would
    report the parent's peak."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _model_dir(model_dir: Path | None) -> Path:
    from ml.inference import CURRENT_FILE, MODELS_ROOT

    if model_dir is not None:
        return model_dir
    return MODELS_ROOT / (MODELS_ROOT / CURRENT_FILE).read_text().strip()


# --- One runtime, in its own process. -------------------------------------------------------


def measure_one(model_dir: Path, runtime: str, threads: int, iterations: int) -> dict:
    """Load `runtime` of the model with `threads` threads and time it, in this process."""
    import torch

    from ml.inference import Classifier

    began = time.perf_counter()
    classifier = Classifier.load(model_dir, threads=threads, runtime=runtime)
    load_s = time.perf_counter() - began
    rss_loaded = peak_rss_mb()
    image = sample_image((200, 150))
    single = latencies_ms(lambda: classifier.predict(image), iterations)
    cam = latencies_ms(lambda: classifier.heatmap(image, "mel"), max(iterations // 4, 5), 2)
    size = classifier.config.input_size
    batch = torch.from_numpy(
        np.random.default_rng(0).normal(size=(BATCH, 3, size, size)).astype(np.float32)
    )
    times = latencies_ms(lambda: classifier.predict_tensors(batch), max(iterations // 8, 3), 1)
    return {
        "runtime": runtime,
        "threads": threads,
        "load_s": round(load_s, 2),
        "single_p50_ms": statistics.median(single),
        "single_p95_ms": percentile(single, 95),
        "heatmap_p50_ms": statistics.median(cam),
        "batch32_img_s": BATCH * 1000.0 / statistics.median(times),
        "rss_after_load_mb": rss_loaded,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_one(model_dir: Path, runtime: str, threads: int, iterations: int) -> dict:
    command = [sys.executable, "-m", "bench.inference", "--one", runtime]
    command += ["--threads", str(threads), "--iterations", str(iterations)]
    command += ["--model-dir", str(model_dir)]
    # Our own interpreter and module, arguments from this process: nothing untrusted.
    done = subprocess.run(command, capture_output=True, text=True)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"{runtime} ({threads} threads) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- The CPU and the roofline. ---------------------------------------------------------------


def cpu_info() -> dict:
    """Model name, family, the instruction sets that matter here, cores and clock."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name", "unknown"),
        "vendor": fields.get("vendor_id", ""),
        "family": int(fields.get("cpu family", "0") or 0),
        "mhz": float(fields.get("cpu MHz", "0") or 0),
        "cores": os.cpu_count() or 1,
        "flags": {name: flag in flags for flag, name in FLAGS.items()},
    }


def fma_bits(cpu: dict) -> int:
    """Width of the vector units that execute FMAs. AMD Zen 3/4 (family 25) run AVX-512 on
    256-bit units, two passes per instruction; Zen 5 and Intel's server cores are 512 wide."""
    if not cpu["flags"]["AVX-512F"]:
        return 256
    return 256 if cpu["vendor"] == "AuthenticAMD" and cpu["family"] == 25 else 512


def peaks(cpu: dict) -> tuple[float, float]:
    """Peak fp32 FLOP/s and int8 op/s of all cores, assuming two FMA pipes per core.
    An fp32 FMA lane does 2 FLOPs a cycle; a VNNI lane (VPDPBUSD) 4 int8 multiply-adds,
    8 ops; without VNNI the int8 path (VPMADDUBSW + VPMADDWD + VPADDD) is about 2x fp32."""
    lanes = fma_bits(cpu) // 32
    per_cycle_fp32 = 2 * lanes * 2
    vnni = cpu["flags"]["AVX-512 VNNI"] or cpu["flags"]["AVX-VNNI"]
    per_cycle_int8 = 2 * lanes * 8 if vnni else 2 * per_cycle_fp32
    hz = cpu["mhz"] * 1e6 * cpu["cores"]
    return hz * per_cycle_fp32, hz * per_cycle_int8


def memory_bandwidth_gb_s(megabytes: int = 256) -> float:
    """Best of five large array copies: bytes read plus bytes written, per second."""
    source = np.ones(megabytes * 2**20 // 8)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - began)
    return 2 * source.nbytes / best / 1e9


def model_costs(model_dir: Path) -> dict:
    """FLOPs per image (FlopCounterMode), weight bytes, and the activation bytes one image
    writes and reads again (every convolution's and linear layer's output, fp32)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ml.inference import Classifier
    from ml.metadata import N_FEATURES

    classifier = Classifier.load(model_dir, threads=1, runtime="torch", warm_up=False)
    model, size = classifier.model, classifier.config.input_size
    activations = 0

    def count(module, inputs, output) -> None:
        nonlocal activations
        activations += output.numel() * 4

    handles = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(torch.zeros(1, 3, size, size), torch.zeros(1, N_FEATURES))
    for handle in handles:
        handle.remove()
    weights = sum(p.numel() * 4 for p in model.parameters())
    card = classifier.card
    by_module = counter.get_flop_counts()
    float_stages = {f".backbone.{stage}" for stage in FLOAT_STAGES}
    in_float = sum(
        sum(counts.values())
        for name, counts in by_module.items()
        if any(name.endswith(stage) for stage in float_stages)
    )
    return {
        "version": card["version"],
        "input_size": size,
        "flops_per_image": float(counter.get_total_flops()),
        # The int8 forms keep these stages in fp32 (ml.runtimes.FLOAT_STAGES).
        "float_stage_flops_per_image": float(in_float),
        "weight_bytes": weights,
        "activation_bytes_per_image": 2 * activations,  # written, then read by the next layer
        "runtimes": card.get("runtimes", {}),
    }


def attainable_img_s(
    costs: dict, fp32_peak: float, int8_peak: float, bandwidth: float, int8: bool
) -> float:
    """The roofline's bound for batches of 32: compute-bound at peak, or memory-bound on
    activations and the weights read once per batch. The int8 forms run their float stages at
    the fp32 peak and the rest at the int8 peak, on a quarter of the bytes (an upper bound)."""
    total = costs["flops_per_image"]
    if int8:
        in_float = costs["float_stage_flops_per_image"]
        seconds = in_float / fp32_peak + (total - in_float) / int8_peak
    else:
        seconds = total / fp32_peak
    shrink = 4 if int8 else 1
    per_image = (costs["activation_bytes_per_image"] + costs["weight_bytes"] / BATCH) / shrink
    return min(1.0 / seconds, bandwidth * 1e9 / per_image)


# --- The side-by-side run. -------------------------------------------------------------------


def side_by_side(model_dir: Path, iterations: int) -> dict:
    cpu = cpu_info()
    costs = model_costs(model_dir)
    fp32_peak, int8_peak = peaks(cpu)
    bandwidth = memory_bandwidth_gb_s()
    servable = [r for r, e in costs["runtimes"].items() if e.get("servable")]
    not_servable = sorted(set(costs["runtimes"]) - set(servable))
    from ml.runtimes import RUNTIMES

    runtimes = ["torch"] + [r for r in RUNTIMES[1:] if r in servable]
    load = os.getloadavg()[0]
    rows = [run_one(model_dir, r, t, iterations) for r in runtimes for t in THREADS]
    for row in rows:
        int8 = "int8" in row["runtime"]
        share = row["threads"] / cpu["cores"]
        row["attainable_img_s"] = attainable_img_s(
            costs, fp32_peak * share, int8_peak * share, bandwidth, int8
        )
    return {
        "cpu": cpu,
        "model": {k: v for k, v in costs.items() if k != "runtimes"},
        "not_servable": not_servable,
        "peak_fp32_gflop_s": fp32_peak / 1e9,
        "peak_int8_gop_s": int8_peak / 1e9,
        "fma_bits": fma_bits(cpu),
        "memory_bandwidth_gb_s": bandwidth,
        "load_average": [load, os.getloadavg()[0]],
        "rows": rows,
    }


def print_report(result: dict) -> None:
    cpu, model, rows = result["cpu"], result["model"], result["rows"]
    vnni = cpu["flags"]["AVX-512 VNNI"] or cpu["flags"]["AVX-VNNI"]
    print(
        f"CPU: {cpu['model']} (family {cpu['family']}), {cpu['cores']} logical CPUs, "
        f"{cpu['mhz']:.0f} MHz"
    )
    print(
        "instruction sets: "
        + ", ".join(f"{name} {'yes' if on else 'no'}" for name, on in cpu["flags"].items())
    )
    print(
        f"load average {result['load_average'][0]:.2f} at start, "
        f"{result['load_average'][1]:.2f} at end (other work on the CPU: see the docstring)"
    )
    print(
        f"model {model['version']} at {model['input_size']} px: "
        f"{model['flops_per_image'] / 1e9:.3f} GFLOPs per image, "
        f"{model['weight_bytes'] / 1e6:.1f} MB of fp32 weights, "
        f"{model['activation_bytes_per_image'] / 1e6:.1f} MB of activation traffic per image; "
        f"{100 * model['float_stage_flops_per_image'] / model['flops_per_image']:.0f}% of the "
        "FLOPs are in the stages the int8 forms keep in fp32"
    )
    if result["not_servable"]:
        print(f"not measured (failed parity): {', '.join(result['not_servable'])}")
    print()
    base = {r["threads"]: r for r in rows if r["runtime"] == "torch"}
    header = (
        f"{'runtime':<14}{'thr':>4}{'single p50':>12}{'p95':>9}{'x torch':>9}"
        f"{'batch32 img/s':>15}{'x torch':>9}{'heatmap':>10}{'peak RSS':>10}{'load':>8}"
    )
    print(header)
    for r in rows:
        b = base[r["threads"]]
        print(
            f"{r['runtime']:<14}{r['threads']:>4}{r['single_p50_ms']:>9.1f} ms"
            f"{r['single_p95_ms']:>6.1f} ms{r['single_p50_ms'] / b['single_p50_ms']:>9.2f}"
            f"{r['batch32_img_s']:>15.1f}{r['batch32_img_s'] / b['batch32_img_s']:>9.2f}"
            f"{r['heatmap_p50_ms']:>7.1f} ms{r['peak_rss_mb']:>7.0f} MB{r['load_s']:>7.1f}s"
        )
    print()
    print(
        f"roofline: {result['fma_bits']}-bit FMA units, 2 per core assumed: peak "
        f"{result['peak_fp32_gflop_s']:.0f} GFLOP/s fp32, {result['peak_int8_gop_s']:.0f} "
        f"GOP/s int8{' (VNNI)' if vnni else ''} on {cpu['cores']} cores; memory "
        f"{result['memory_bandwidth_gb_s']:.1f} GB/s (numpy copy)"
    )
    for r in rows:
        achieved = r["batch32_img_s"] * model["flops_per_image"] / 1e9
        print(
            f"  {r['runtime']:<14}{r['threads']} thr: attainable {r['attainable_img_s']:7.0f} "
            f"img/s, reached {r['batch32_img_s']:6.1f} "
            f"({100 * r['batch32_img_s'] / r['attainable_img_s']:4.1f}%, "
            f"{achieved:5.1f} G(FL)OP/s)"
        )
    need_batch, need_single = TARGETS[vnni]
    print()
    for threads in THREADS:
        fast = [r for r in rows if r["threads"] == threads and r["runtime"] != "torch"]
        if not fast:
            print(f"{threads} thread(s): no accelerated runtime passed parity")
            continue
        batch = max(fast, key=lambda r: r["batch32_img_s"])
        single = min(fast, key=lambda r: r["single_p50_ms"])
        batch_ratio = batch["batch32_img_s"] / base[threads]["batch32_img_s"]
        single_ratio = single["single_p50_ms"] / base[threads]["single_p50_ms"]
        print(
            f"{threads} thread(s), targets for {'VNNI' if vnni else 'AVX2 only'}: "
            f"batch >= {need_batch:.0f}x torch: {batch_ratio:.2f}x ({batch['runtime']}) "
            f"{'PASS' if batch_ratio >= need_batch else 'MISS'}; single <= "
            f"{need_single:.2f}x: {single_ratio:.2f}x ({single['runtime']}) "
            f"{'PASS' if single_ratio <= need_single else 'MISS'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="default: the version in ml/models/CURRENT")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--one", metavar="RUNTIME", help="measure one runtime in this process")
    parser.add_argument("--threads", type=int, default=1, help="with --one")
    args = parser.parse_args()
    model_dir = _model_dir(args.model_dir)
    if args.one:
        print(json.dumps(measure_one(model_dir, args.one, args.threads, args.iterations)))
        return
    result = side_by_side(model_dir, args.iterations)
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
