"""A worker's memory per runtime: a real Celery worker process analyses sample images.

    .venv/bin/python bench/worker_memory.py [--images 6] [--runtimes torch onnx-fp32 onnx-int8]

For each runtime, one `celery worker --pool=solo` process is started with ML_RUNTIME set to it
(the project's settings; SQLite and the filesystem broker in a temporary folder unless the
environment names others), analyses `--images` sample uploads through the real task (gate,
classifier, heatmaps, embedding), and is read from /proc before it is stopped: its peak
resident memory (VmHWM), its resident memory after the work (VmRSS), and whether torch's
library is mapped into it at all. Printed side by side, each as a ratio to torch's.

Why: a worker that imports torch holds about 780 MB before it loads a model; one that serves
an ONNX runtime should not import it (ml.onnx_serving), and this is the measurement of that.
A runtime the shipped card does not mark servable is reported as such and not started.
`auto` is the default setting: the worker times the candidates at start (torch in a child
process, whose memory is not the worker's) and serves the fastest.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.celery_worker import solo_worker  # noqa: E402 - once the root is on the path

SAMPLES = sorted((ROOT / "samples").glob("*.jpg"))


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of a process, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0])
    return fields


def maps_torch(pid: int) -> bool:
    """Whether libtorch is mapped into the process (it imported torch)."""
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def measure(runtime: str, images: int, timeout: float, var_dir: Path) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from diagnosis import services
    from diagnosis.models import Analysis
    from tests import factories

    clinic = factories.ClinicFactory(name=f"Memory {runtime}")
    staff = factories.UserFactory(clinic=clinic)
    lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
    log_path = var_dir / f"worker-{runtime}.log"
    env = {**os.environ, "ML_RUNTIME": runtime}
    with solo_worker(log_path, ready_within=180, env=env, name=f"worker ({runtime})") as worker:
        at_ready = proc_status(worker.pid)
        ids = []
        for index in range(images):
            sample = SAMPLES[index % len(SAMPLES)]
            upload = SimpleUploadedFile(sample.name, sample.read_bytes(), content_type="image/jpeg")
            ids.append(
                services.image_upload(
                    actor=staff, lesion=lesion, upload=upload, allow_duplicate=True
                ).pk
            )
        deadline = time.monotonic() + timeout
        while Analysis.objects.filter(pk__in=ids, status__in=("queued", "running")).exists():
            if time.monotonic() > deadline or worker.poll() is not None:
                sys.exit(f"worker ({runtime}) did not finish:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        after = proc_status(worker.pid)
        torch_mapped = maps_torch(worker.pid)
    done = list(Analysis.objects.filter(pk__in=ids))
    served_by = sorted({str((a.timings_ms or {}).get("runtime", "?")) for a in done})
    return {
        "runtime": runtime,
        "served_by": ",".join(served_by),
        "analysed": sum(a.status == "done" for a in done),
        "gated_out": sum(a.status == "not_analysed" for a in done),
        "failed": sum(a.status == "failed" for a in done),
        "rss_ready_mb": at_ready["VmRSS"] / 1024,
        "peak_mb": after["VmHWM"] / 1024,
        "rss_after_mb": after["VmRSS"] / 1024,
        "torch_loaded": torch_mapped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument(
        "--runtimes", nargs="+", default=["torch", "onnx-fp32", "onnx-int8", "auto"]
    )
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    var_dir = Path(os.environ.setdefault("PORTAL_VAR_DIR", tempfile.mkdtemp(prefix="bench-mem-")))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_portal.settings.dev")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from ml.runtime_choice import servable
    from ml.served import current_model_dir, read_card

    call_command("migrate", verbosity=0)
    card = read_card(current_model_dir(settings.ML_MODELS_ROOT))
    rows, skipped = [], []
    for runtime in args.runtimes:
        if runtime != "auto" and not servable(card, runtime):
            skipped.append(runtime)
            continue
        rows.append(measure(runtime, args.images, args.timeout, var_dir))
        print(json.dumps(rows[-1]), file=sys.stderr)

    broker = settings.CELERY_BROKER_URL.split(":")[0]
    print(
        f"model {card['version']}, {args.images} sample uploads per worker, solo pool, "
        f"{settings.ML_TORCH_THREADS} thread(s), broker {broker}"
    )
    base = next((r for r in rows if r["runtime"] == "torch"), None)
    header = (
        f"{'runtime':<11} {'served by':<10} {'done':>4} {'RSS ready':>10} {'peak (HWM)':>11} "
        f"{'RSS after':>10} {'peak/torch':>10} {'torch?':>7}"
    )
    print(header)
    for row in rows:
        ratio = f"{row['peak_mb'] / base['peak_mb']:.2f}" if base else "-"
        print(
            f"{row['runtime']:<11} {row['served_by']:<10} {row['analysed']:>4} "
            f"{row['rss_ready_mb']:>7.0f} MB {row['peak_mb']:>8.0f} MB "
            f"{row['rss_after_mb']:>7.0f} MB "
            f"{ratio:>10} {'yes' if row['torch_loaded'] else 'no':>7}"
        )
    for runtime in skipped:
        print(f"{runtime:<11} not servable: the card records it failed its parity check")


if __name__ == "__main__":
    main()
