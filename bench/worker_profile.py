"""Where one worker's time goes per analysis: a batch of queued analyses run in this process
under cProfile, the time split into the stages of diagnosis.services.batch.

    ML_RUNTIME=onnx-fp32 .venv/bin/python bench/worker_profile.py [--batch 16] [--reps 3]

The shipped samples (14), and their mirror images when the batch needs more, are uploaded
and queued; then `--reps` times: the batch is claimed and run by `analyses_run` under the
profiler (the analyses are queued again between repetitions). Printed per analysis, from the
profile of all repetitions: decoding the stored image into a working copy, the gate's quality
measures, the gate's feature network, preprocessing, the classifier's forward pass, the heatmaps
(the class activation maps, drawing, PNG encoding), the embedding, file storage and the rest of
the database writes. The CPU is whatever the machine gives: compare stages within one run.
SQLite in a temporary folder unless DATABASE_URL says otherwise.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAMPLES = sorted((ROOT / "samples").glob("*.jpg"))

# (stage, [(file suffix, function name), ...]): a stage's time is the cumulative time of its
# functions (none of them calls another of the same stage).
STAGES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("decode + working copy", (("diagnosis/services/image.py", "image_for_analysis"),)),
    ("gate: quality measures", (("ml/quality.py", "measure"),)),
    ("gate: feature network", (("ml/gate.py", "ood_scores"),)),
    ("classifier: preprocess", (("ml/onnx_serving.py", "preprocess"),)),
    ("classifier: forward", (("ml/runtimes.py", "outputs"),)),
    ("heatmaps: draw", (("ml/heatmap.py", "cam_to_image"), ("ml/heatmap.py", "overlay"))),
    ("heatmaps: PNG encode", (("PIL/Image.py", "save"),)),
    ("embedding: reduction", (("ml/embedding.py", "apply"),)),
    ("file storage", (("django/core/files/storage/base.py", "save"),)),
    ("database writes", (("diagnosis/services/batch.py", "_store_result"),)),
)


def _cumulative(stats: pstats.Stats, suffix: str, name: str) -> tuple[float, int]:
    total, calls = 0.0, 0
    for (filename, _, function), (_, ncalls, _, cumtime, _) in stats.stats.items():
        if function == name and filename.replace(os.sep, "/").endswith(suffix):
            total += cumtime
            calls += ncalls
    return total, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    os.environ.setdefault("PORTAL_VAR_DIR", tempfile.mkdtemp(prefix="bench-profile-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_portal.settings.dev")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from PIL import Image

    call_command("migrate", verbosity=0)
    from diagnosis import services
    from diagnosis.classifier import get_classifier, get_embedder, get_gate
    from diagnosis.models import Analysis, AnalysisStatus
    from diagnosis.services.batch import analyses_claim, analyses_run
    from tests import factories

    classifier = get_classifier()
    get_gate(), get_embedder()  # loaded and warmed before the clock, as in a started worker
    clinic = factories.ClinicFactory(name="Profile clinic")
    staff = factories.UserFactory(clinic=clinic)
    lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
    ids = []
    for n in range(args.batch):
        sample = SAMPLES[n % len(SAMPLES)]
        data = sample.read_bytes()
        if n >= len(SAMPLES):  # a mirror image: another file, the same lesion
            buffer = io.BytesIO()
            Image.open(sample).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(buffer, "JPEG")
            data = buffer.getvalue()
        upload = SimpleUploadedFile(f"p{n}.jpg", data, content_type="image/jpeg")
        with _no_task():
            analysis = services.image_upload(
                actor=staff, lesion=lesion, upload=upload, allow_duplicate=True
            )
        ids.append(analysis.pk)

    profile = cProfile.Profile()
    wall = []
    for _ in range(args.reps):
        Analysis.objects.filter(pk__in=ids).update(status=AnalysisStatus.QUEUED, batch_lead=None)
        claimed = analyses_claim(analysis_ids=ids)
        began = time.perf_counter()
        profile.enable()
        done = analyses_run(claimed)
        profile.disable()
        wall.append(time.perf_counter() - began)
        assert all(a.status == AnalysisStatus.DONE for a in done), [a.status for a in done]
    stats = pstats.Stats(profile)
    per = 1000.0 / (args.batch * args.reps)
    total = sum(wall) * per
    print(
        f"runtime {classifier.runtime}, batch {args.batch}, {args.reps} repetitions, "
        f"cpus {os.cpu_count()}: {total:.1f} ms per analysis "
        f"({args.batch * args.reps / sum(wall):.1f} analyses/s, profiler on)"
    )
    accounted = 0.0
    for stage, functions in STAGES:
        seconds = sum(_cumulative(stats, suffix, name)[0] for suffix, name in functions)
        if stage == "database writes":
            # _store_result includes the PNG encoding and the file storage: count them once.
            seconds -= sum(
                _cumulative(stats, suffix, name)[0]
                for other, functions in STAGES
                if other in ("heatmaps: PNG encode", "file storage")
                for suffix, name in functions
            )
        accounted += seconds * per
        print(f"  {stage:<24} {seconds * per:7.1f} ms  {seconds * per / total:6.1%}")
    print(f"  {'everything else':<24} {total - accounted:7.1f} ms  {1 - accounted / total:6.1%}")
    if os.environ.get("PROFILE_TOP"):
        stats.sort_stats("cumulative").print_stats(int(os.environ["PROFILE_TOP"]))


class _no_task:
    """Uploads without sending their task: the batch is run here, not by a worker."""

    def __enter__(self) -> None:
        from diagnosis.services import image

        self._real = image._enqueue
        image._enqueue = lambda _analysis: None

    def __exit__(self, *exc) -> None:
        from diagnosis.services import image

        image._enqueue = self._real


if __name__ == "__main__":
    main()
