"""Milliseconds to find a result's 5 similar confirmed cases among 100,000 stored embeddings.

    # PostgreSQL (a database of its own; created and migrated here, dropped with --drop)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_similar \\
        .venv/bin/python bench/similar_cases.py [--embeddings 100000] [--queries 50]

Single-threaded (BLAS limited to one thread before NumPy loads), as a web process serves one
request at a time. It prints, with the load average (the machine may be busy):

1. NumPy alone: `ml.neighbours.nearest` over the vectors (the scan itself);
2. the first search of a process: the clinic's vectors read from PostgreSQL into the index;
3. a search after that, as a doctor's page makes it: `similar_cases()` end to end (the index
   brought up to date, the scan, and the query confirming the nearest candidates).

The clinic: 20,000 patients with one lesion each and five images per lesion; 70% of results
signed by a doctor, 5% of lesions with histology; vectors of 64 dimensions (the shipped
reduction's) drawn around 500 centres, so that neighbours are neighbours.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402 - after the thread limits above

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402 - once the root is on the path

DIMS = 64
SPACE = "bench-model/pca64-000000000000"


def _ms(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = percentile(ms, 95)
    return f"median {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms"


def _vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.normal(size=(500, DIMS))
    vectors = centres[rng.integers(0, 500, n)] + 0.35 * rng.normal(size=(n, DIMS))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype("<f4")


def bench_numpy(vectors: np.ndarray, queries: int) -> list[float]:
    from ml.neighbours import nearest

    times = []
    for i in range(queries):
        started = time.perf_counter()
        nearest(vectors, vectors[i * 7], 50)
        times.append(time.perf_counter() - started)
    return times


def populate(n: int, vectors: np.ndarray, rng: np.random.Generator):
    """One clinic with `n` analysed images, their embeddings, reviews and histology."""
    import datetime

    from django.utils import timezone

    from accounts.models import Clinic, Role, User
    from diagnosis.models import (
        Analysis,
        DermoscopicImage,
        Histopathology,
        ImageEmbedding,
        Lesion,
        Review,
    )
    from patients.models import Patient

    clinic = Clinic.objects.create(name="Bench clinic", address="1 Bench Street")
    doctor = User.objects.create(
        email="bench.doctor@clinic.example", full_name="Dr Bench", clinic=clinic, role=Role.DOCTOR
    )
    per_lesion = 5
    lesions_n = n // per_lesion
    batch = 5000
    born = datetime.date(1970, 1, 1)
    patients = Patient.objects.bulk_create(
        [
            Patient(
                clinic=clinic,
                mrn=f"B{i:07d}",
                first_name="A",
                last_name=f"B{i}",
                date_of_birth=born,
                sex="female",
            )
            for i in range(lesions_n)
        ],
        batch_size=batch,
    )
    lesions = Lesion.objects.bulk_create(
        [Lesion(patient=p, anatomic_site="back") for p in patients], batch_size=batch
    )
    images = DermoscopicImage.objects.bulk_create(
        [
            DermoscopicImage(
                lesion=lesions[i // per_lesion],
                content_type="image/jpeg",
                width=600,
                height=450,
                size_bytes=1,
                sha256=f"{i:064x}",
            )
            for i in range(n)
        ],
        batch_size=batch,
    )
    now = timezone.now()
    probabilities = {"akiec": 0, "bcc": 0, "bkl": 0, "df": 0, "mel": 0.1, "nv": 0.9, "vasc": 0}
    analyses = Analysis.objects.bulk_create(
        [
            Analysis(
                image=image,
                status="done",
                probabilities=probabilities,
                top_class="nv",
                melanoma_probability=0.1,
                risk_tier="low",
                triage_level="routine",
                model_version="bench-model",
                finished_at=now,
            )
            for image in images
        ],
        batch_size=batch,
    )
    ImageEmbedding.objects.bulk_create(
        [
            ImageEmbedding(analysis=a, clinic=clinic, space=SPACE, vector=vectors[i].tobytes())
            for i, a in enumerate(analyses)
        ],
        batch_size=batch,
    )
    signed = rng.random(n) < 0.7
    Review.objects.bulk_create(
        [
            Review(
                analysis=a,
                version=1,
                author=doctor,
                agrees_with_ai=True,
                diagnosis="nv",
                management="reassure",
                signed_at=now,
                signed_by=doctor,
                signed_by_name="Dr Bench",
            )
            for a, s in zip(analyses, signed, strict=True)
            if s
        ],
        batch_size=batch,
    )
    Histopathology.objects.bulk_create(
        [
            Histopathology(lesion=lesion, diagnosis="nv", reported_on=born, lab_reference=f"H{i}")
            for i, lesion in enumerate(lesions)
            if rng.random() < 0.05
        ],
        batch_size=batch,
    )
    return doctor, analyses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--numpy-only", action="store_true", help="skip the database part")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = _vectors(args.embeddings, rng)

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"1. NumPy scan of {args.embeddings} x {DIMS}: {_ms(bench_numpy(vectors, args.queries))}")
    if args.numpy_only:
        return

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_portal.settings.dev")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from diagnosis.selectors import similar

    if connection.vendor != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL database of its own (see the docstring)")
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    doctor, analyses = populate(args.embeddings, vectors, rng)
    print(f"   (stored {args.embeddings} embeddings in {time.perf_counter() - started:.0f} s)")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    similar.forget_indexes()
    started = time.perf_counter()
    first = similar.similar_cases(user=doctor, analysis=analyses[0])
    cold = time.perf_counter() - started
    print(f"2. first search of a process (index read from PostgreSQL): {cold * 1000:.0f} ms")

    times = []
    picks = rng.choice(len(analyses), size=args.queries, replace=False)
    for pick in picks:
        started = time.perf_counter()
        cases = similar.similar_cases(user=doctor, analysis=analyses[int(pick)])
        times.append(time.perf_counter() - started)
        assert cases is not None and len(cases) == similar.SIMILAR_COUNT
    print(f"3. similar_cases() end to end, {args.queries} searches: {_ms(times)}")
    print(
        f"   first search found {len(first or [])} cases; nearest distance {first[0].distance:.3f}"
        if first
        else ""
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
