"""Which runtime a worker serves: the one its setting names, or the fastest one measured here.

    choice = choose(model_dir, "auto", threads=1)     # times each candidate for about a second
    choice.runtime, choice.images_per_s               # e.g. "onnx-fp32", {"onnx-fp32": 151.2}
    python -m ml.runtime_choice --model-dir ml/models/<version> --runtime torch   # one timing

Why measure at start: the fastest runtime depends on the CPU (on one with VNNI, int8 ONNX ran
about 2.5x fp32; on one with AVX2 only it gained nothing), so a worker host measures the
runtimes that passed their parity check on its own CPU, for about a second, and serves the
fastest. The candidates are the card's servable ONNX forms and the card's own `runtime`.
The PyTorch ones are timed in a child process, so that a worker which ends up serving ONNX
never imports torch (about 780 MB of resident memory for the import alone).

The ONNX forms are timed in turns (TIMING_ROUNDS rounds, each form once a round) and each keeps
its best round: a worker host starting beside other work (the web server, another worker) saw
onnx-fp32 and onnx-int8 swap places between two sequential one-second timings on a shared
2-vCPU machine, because whichever ran during a burst of other load lost.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ml.onnx_serving import ONNX_RUNTIMES
from ml.served import read_card, resolve_threads

logger = logging.getLogger(__name__)

AUTO = "auto"
RUNTIMES: tuple[str, ...] = ("torch", "torch-compile", "torch-int8", *ONNX_RUNTIMES)
TIMING_BATCH = 8
TIMING_SECONDS = 1.0
TIMING_ROUNDS = 5
CHILD_TIMEOUT_S = 180


@dataclass(frozen=True)
class Choice:
    runtime: str
    setting: str  # "auto" or the runtime the setting forced
    reason: str  # in words, for the log and /readyz
    images_per_s: dict[str, float] = field(default_factory=dict)  # measured candidates

    def as_dict(self) -> dict:
        return asdict(self)


def servable(card: dict, runtime: str) -> bool:
    """Plain PyTorch is the reference and always servable; any other form only when the card
    records it as having passed its parity check."""
    if runtime == "torch":
        return True
    return bool((card.get("runtimes") or {}).get(runtime, {}).get("servable"))


def candidates(card: dict) -> list[str]:
    """The card's runtime (if servable) and every servable ONNX form, without repeats."""
    names = [card.get("runtime", "torch"), *ONNX_RUNTIMES]
    return [n for i, n in enumerate(names) if n not in names[:i] and servable(card, n)]


def _synthetic_batch(size: int) -> np.ndarray:
    batch = np.random.default_rng(0).standard_normal((TIMING_BATCH, 3, size, size))
    return batch.astype(np.float32)


def _rate(forward: Callable[[np.ndarray], object], batch: np.ndarray, seconds: float) -> float:
    """Images per second of `forward` on `batch`, called until `seconds` have passed (once at
    least)."""
    done, began = 0, time.perf_counter()
    while True:
        forward(batch)
        done += len(batch)
        elapsed = time.perf_counter() - began
        if elapsed >= seconds:
            return done / elapsed


def _images_per_s(forward, size: int, seconds: float) -> float:
    """Images per second of `forward` on a synthetic batch, after one untimed warm-up call."""
    batch = _synthetic_batch(size)
    forward(batch)
    return _rate(forward, batch, seconds)


def images_per_s_in_turns(
    forwards: dict[str, Callable[[np.ndarray], object]],
    batch: np.ndarray,
    seconds: float,
    rounds: int = TIMING_ROUNDS,
) -> dict[str, float]:
    """Images per second of each forward, timed in turns: `rounds` rounds in which each runs for
    seconds / rounds, after one untimed warm-up call each; each keeps its best round. Other
    work on the CPU then slows every candidate alike, or only one round of one of them, which
    its other rounds outvote."""
    for forward in forwards.values():
        forward(batch)
    best = dict.fromkeys(forwards, 0.0)
    for _ in range(rounds):
        for name, forward in forwards.items():
            best[name] = max(best[name], _rate(forward, batch, seconds / rounds))
    return best


def time_onnx_in_turns(
    model_dir: Path, runtimes: Sequence[str], threads: int, seconds: float
) -> dict[str, float]:
    """Images per second of each ONNX `runtime` of `model_dir`, timed in turns in this process
    (no torch); one that fails to load is left out (logged)."""
    from ml.onnx_serving import OnnxClassifier

    loaded = {}
    for runtime in runtimes:
        try:
            loaded[runtime] = OnnxClassifier.load(
                model_dir, runtime=runtime, threads=threads, warm_up=False
            )
        except Exception:  # noqa: BLE001 - a runtime that cannot load here is not a candidate
            logger.exception("runtime %s of %s could not be loaded; not served", runtime, model_dir)
    if not loaded:
        return {}
    size = next(iter(loaded.values())).config.input_size
    forwards = {runtime: onnx.forward for runtime, onnx in loaded.items()}
    return images_per_s_in_turns(forwards, _synthetic_batch(size), seconds)


def time_in_process(model_dir: Path, runtime: str, threads: int, seconds: float) -> float:
    """Images per second of `runtime` in this process (ONNX: no torch; torch ones: imports it)."""
    if runtime in ONNX_RUNTIMES:
        from ml.onnx_serving import OnnxClassifier

        onnx = OnnxClassifier.load(model_dir, runtime=runtime, threads=threads, warm_up=False)
        return _images_per_s(onnx.forward, onnx.config.input_size, seconds)
    import torch

    from ml.inference import Classifier

    network = Classifier.load(model_dir, runtime=runtime, threads=threads, warm_up=False)
    return _images_per_s(
        lambda b: network.forward(torch.from_numpy(b)), network.config.input_size, seconds
    )


def time_in_child(model_dir: Path, runtime: str, threads: int, seconds: float) -> float:
    """`time_in_process` in a child Python, so this process never imports torch."""
    command = [
        sys.executable,
        "-m",
        "ml.runtime_choice",
        "--model-dir",
        str(model_dir),
        "--runtime",
        runtime,
        "--threads",
        str(threads),
        "--seconds",
        str(seconds),
    ]
    # From the folder that holds ml/, wherever the worker was started.
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(  # noqa: S603 - this interpreter, this module, our arguments
        command, cwd=root, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=True
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["images_per_s"])


def choose(
    model_dir: str | Path,
    setting: str = AUTO,
    *,
    threads: int | None = None,
    seconds: float = TIMING_SECONDS,
) -> Choice:
    """The runtime to serve from `model_dir`. `setting` names one (it must be servable:
    ValueError otherwise, in words) or is `auto`: each candidate is timed and the fastest
    wins; one that fails to load or run is left out (logged), and plain PyTorch is the
    answer when nothing else is left."""
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    threads = resolve_threads(threads)
    if setting != AUTO:
        if setting not in RUNTIMES:
            raise ValueError(
                f"ML_RUNTIME={setting!r} is not a runtime; use auto or one of {', '.join(RUNTIMES)}"
            )
        if not servable(card, setting):
            raise ValueError(
                f"ML_RUNTIME={setting} but {card['version']} has no servable {setting} form "
                f"(the servable ones: {', '.join(candidates(card))})"
            )
        return Choice(setting, setting, "forced by ML_RUNTIME")
    names = candidates(card)
    if len(names) == 1:
        return Choice(names[0], AUTO, "the only servable runtime")
    measured: dict[str, float] = {}
    for name in names:
        if name in ONNX_RUNTIMES:
            continue
        try:
            measured[name] = round(time_in_child(model_dir, name, threads, seconds), 1)
        except Exception:  # noqa: BLE001 - a runtime that cannot run here is not a candidate
            logger.exception("runtime %s of %s could not be timed; not served", name, model_dir)
    onnx_names = [name for name in names if name in ONNX_RUNTIMES]
    if onnx_names:
        try:
            rates = time_onnx_in_turns(model_dir, onnx_names, threads, seconds * len(onnx_names))
        except Exception:  # noqa: BLE001 - as above: the ONNX forms are then not candidates
            logger.exception("the ONNX runtimes of %s could not be timed; not served", model_dir)
            rates = {}
        measured.update({name: round(rate, 1) for name, rate in rates.items()})
    if not measured:
        return Choice("torch", AUTO, "no runtime could be timed; serving the reference")
    fastest = max(measured, key=measured.__getitem__)
    reason = (
        f"fastest of {len(measured)} measured on this CPU "
        f"(batch of {TIMING_BATCH}, {threads} thread(s), about {seconds:g} s each; "
        f"ONNX forms in {TIMING_ROUNDS} turns, best turn)"
    )
    return Choice(fastest, AUTO, reason, measured)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--runtime", choices=RUNTIMES, help="time only this one")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=TIMING_SECONDS)
    args = parser.parse_args(argv)
    if args.runtime:
        rate = time_in_process(args.model_dir, args.runtime, args.threads, args.seconds)
        print(json.dumps({"runtime": args.runtime, "images_per_s": round(rate, 1)}))
        return
    print(json.dumps(choose(args.model_dir, threads=args.threads, seconds=args.seconds).as_dict()))


if __name__ == "__main__":
    main()
