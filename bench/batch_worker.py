"""One worker draining a backlog, batch size 1 against N, in one run (ratios are the figures).

    # embedded defaults: SQLite, filesystem broker
    .venv/bin/python bench/batch_worker.py
    # PostgreSQL + Redis, as production runs (a fresh database: dropdb/createdb first)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_batch \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/8 .venv/bin/python bench/batch_worker.py --batch 16

For each batch size (ANALYSIS_BATCH_SIZE, 1 = batching off) a worker process (solo pool, one
torch thread unless ML_TORCH_THREADS says otherwise) is started and warmed up, then:
- backlog: --backlog uploads (default 64) are committed in one transaction, so all their tasks
  reach the queue at once; the clock runs from the commit to the last result stored ("queue
  empty": to the last task, the ones that found their analysis done by another's batch too);
- lone upload: --lone uploads one after another, each alone in the queue; upload-to-result is
  the time from its commit to its result being in the database (polled every 5 ms).
The median per-image stage timings (the analyses' timings_ms) say where the time goes.
Then, in this process and with no worker: the network alone, each runtime the shipped card
serves, one image at a time against one batch (interleaved, best of --reps); and what the
drain adds to a lone analysis's claim (batch 1 against N, median of --reps).
State goes to a temporary folder unless PORTAL_VAR_DIR is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.celery_worker import solo_worker  # noqa: E402 - once the root is on the path

SAMPLES = sorted((ROOT / "samples").glob("*.jpg"))
FINISHED = ("done", "failed", "not_analysed")
STAGES = ("gate", "preprocess", "inference", "heatmaps", "embedding")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="the batch size set against 1")
    parser.add_argument("--backlog", type=int, default=64)
    parser.add_argument(
        "--first", choices=("off", "on"), default="off", help="which worker runs first"
    )
    parser.add_argument("--lone", type=int, default=5, help="lone uploads per batch size")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--reps", type=int, default=9, help="repetitions of the in-process parts")
    parser.add_argument("--skip-worker", action="store_true", help="only the in-process parts")
    parser.add_argument("--skip-network", action="store_true", help="only the worker parts")
    args = parser.parse_args()

    os.environ.setdefault("PORTAL_VAR_DIR", tempfile.mkdtemp(prefix="bench-batch-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_portal.settings.dev")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not args.skip_worker:
        sizes = (1, args.batch) if args.first == "off" else (args.batch, 1)
        _print_worker(sorted((_measure(size, args) for size in sizes), key=lambda r: r["size"]))
    if not args.skip_network:
        _print_network(args)
        _print_claim(args)


def _print_worker(rows: list[dict]) -> None:
    from django.conf import settings

    base = rows[0]
    print(
        f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, broker: "
        f"{settings.CELERY_BROKER_URL.split(':', 1)[0]}, torch threads: "
        f"{os.environ.get('ML_TORCH_THREADS', settings.ML_TORCH_THREADS)}, one worker (solo), "
        f"cpus: {os.cpu_count()}"
    )
    print(
        f"{'batch':>5} {'backlog s':>10} {'images/s':>9} {'x':>5} {'batches':>8} "
        f"{'queue empty s':>13} "
        f"{'lone p50 s':>11} {'lone max s':>11}  median ms per image: " + " ".join(STAGES)
    )
    for row in rows:
        stages = " ".join(f"{row['stages'].get(s, float('nan')):.0f}" for s in STAGES)
        print(
            f"{row['size']:>5} {row['backlog_s']:>10.2f} {row['rate']:>9.1f} "
            f"{row['rate'] / base['rate']:>5.2f} {row['batches']:>8} {row['drained_s']:>13.2f} "
            f"{row['lone_p50']:>11.3f} "
            f"{row['lone_max']:>11.3f}  {stages}"
        )


def _print_network(args) -> None:
    """predict_batch one image at a time against one batch, per runtime; the gate's and the
    embedding's feature passes (PyTorch) likewise."""
    import torch
    from PIL import Image

    from ml.embedding import Embedder
    from ml.gate import Gate
    from ml.inference import MODELS_ROOT, Classifier, read_card

    torch.set_num_threads(int(os.environ.get("ML_TORCH_THREADS", "1")))
    model_dir = MODELS_ROOT / (MODELS_ROOT / "CURRENT").read_text().strip()
    card = read_card(model_dir)
    runtimes = ["torch"] + [
        name for name, entry in card.get("runtimes", {}).items() if entry.get("servable")
    ]
    pictures = [Image.open(p).convert("RGB") for p in SAMPLES]
    pictures = (pictures * (args.batch // len(pictures) + 1))[: args.batch]
    print(f"\nnetwork only, {args.batch} images, {model_dir.name}, best of {args.reps} "
          f"(ms per image): one at a time, one batch, ratio")  # fmt: skip
    torch_classifier = None
    for runtime in runtimes:
        classifier = Classifier.load(model_dir, runtime=runtime)
        torch_classifier = torch_classifier or classifier
        _compare(
            f"predict {runtime}",
            lambda c=classifier: [c.predict_batch([p]) for p in pictures],
            lambda c=classifier: c.predict_batch(pictures, batch_size=len(pictures)),
            len(pictures),
            args.reps,
        )
    gate = Gate.load(torch_classifier)
    _compare(
        "gate",
        lambda: [gate.check(p) for p in pictures],
        lambda: gate.check_all(pictures),
        len(pictures),
        args.reps,
    )
    embedder = Embedder.load(torch_classifier)
    _compare(
        "embedding",
        lambda: [embedder.of(p) for p in pictures],
        lambda: embedder.of_all(pictures),
        len(pictures),
        args.reps,
    )


def _compare(name: str, one, many, n: int, reps: int) -> None:
    best = {one: float("inf"), many: float("inf")}
    many()  # warm-up: the first pass at a new batch shape builds its plans
    for rep in range(reps):
        for run in (one, many) if rep % 2 else (many, one):  # interleaved: the noise is shared
            began = time.perf_counter()
            run()
            best[run] = min(best[run], time.perf_counter() - began)
    print(f"  {name:<20} {best[one] * 1000 / n:7.1f} {best[many] * 1000 / n:7.1f} "
          f"{best[one] / best[many]:6.2f}")  # fmt: skip


def _print_claim(args) -> None:
    """The claim of a lone analysis with the drain (batch N: one more SELECT ... SKIP LOCKED)
    against without (batch 1), the only work batching adds to a lone upload."""
    from django.db import transaction

    from diagnosis import services
    from diagnosis.models import Analysis
    from tests import factories

    lesion = factories.LesionFactory()
    image = factories.DermoscopicImageFactory(lesion=lesion)
    times: dict[int, list[float]] = {1: [], args.batch: []}
    for rep in range(args.reps * 4):
        for size in (1, args.batch) if rep % 2 else (args.batch, 1):
            with transaction.atomic():
                analysis = Analysis.objects.create(image=image)
            began = time.perf_counter()
            services.analysis_claim_batch(analysis_id=analysis.pk, batch_size=size)
            times[size].append(time.perf_counter() - began)
            services.analysis_fail(analysis_id=analysis.pk, reason="bench")
    one, many = (statistics.median(times[s]) * 1000 for s in (1, args.batch))
    print(f"\nclaim of a lone analysis (median of {len(times[1])}): batch 1 {one:.1f} ms, "
          f"batch {args.batch} {many:.1f} ms (+{many - one:.1f} ms)")  # fmt: skip


def _tasks_finished(log: Path) -> int:
    return sum(
        "analyse_image(" in line and " finished: " in line
        for line in log.read_text(errors="replace").splitlines()
    )


def _measure(size: int, args) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import transaction

    from diagnosis import services
    from diagnosis.models import Analysis
    from tests import factories

    clinic = factories.ClinicFactory(name=f"Bench clinic {size}")
    staff = factories.UserFactory(clinic=clinic)
    lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))

    def upload(n: int) -> int:
        sample = SAMPLES[n % len(SAMPLES)]
        file = SimpleUploadedFile(sample.name, sample.read_bytes(), content_type="image/jpeg")
        analysis = services.image_upload(
            actor=staff, lesion=lesion, upload=file, allow_duplicate=True
        )
        return analysis.pk

    def wait(ids: list[int]) -> None:
        deadline = time.monotonic() + args.timeout
        while Analysis.objects.filter(pk__in=ids).exclude(status__in=FINISHED).exists():
            if time.monotonic() > deadline:
                sys.exit(f"batch {size}: not finished in {args.timeout}s")
            time.sleep(0.005)

    log = Path(os.environ["PORTAL_VAR_DIR"]) / f"bench-worker-{size}.log"
    env = {**os.environ, "ANALYSIS_BATCH_SIZE": str(size)}
    with solo_worker(log, ready_within=120, env=env):
        warm = upload(0)
        wait([warm])

        with transaction.atomic():
            ids = [upload(n) for n in range(args.backlog)]
        started = time.perf_counter()  # the tasks are sent as the transaction commits
        wait(ids)
        backlog_s = time.perf_counter() - started
        analyses = list(Analysis.objects.filter(pk__in=ids))
        failed = [a for a in analyses if a.status != "done"]
        if failed:
            sys.exit(f"batch {size}: {len(failed)} not done: {failed[0].failure_reason}")

        # The tasks of the analyses run in another's batch are still in the queue (each finds
        # its analysis done and skips it): let them pass, so a lone upload is alone.
        tasks_done = args.backlog + 1
        deadline = time.monotonic() + args.timeout
        while _tasks_finished(log) < tasks_done and time.monotonic() < deadline:
            time.sleep(0.01)
        drained_s = time.perf_counter() - started

        lone = []
        for n in range(args.lone):
            began = time.perf_counter()
            pk = upload(n)  # the service commits and sends the task before returning
            wait([pk])
            lone.append(time.perf_counter() - began)

    stages = {}
    for stage in STAGES:
        values = [a.timings_ms[stage] for a in analyses if stage in (a.timings_ms or {})]
        if values:
            stages[stage] = statistics.median(values)
    return {
        "size": size,
        "backlog_s": backlog_s,
        "drained_s": drained_s,
        "rate": len(ids) / backlog_s,
        "batches": len({a.batch_lead for a in analyses}),
        "lone_p50": statistics.median(lone),
        "lone_max": max(lone),
        "stages": stages,
    }


if __name__ == "__main__":
    main()
