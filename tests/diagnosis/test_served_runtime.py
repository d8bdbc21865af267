"""Which runtime the worker serves (settings.ML_RUNTIME, diagnosis.classifier) and a worker
that serves ONNX without ever importing torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from diagnosis import services
from diagnosis.classifier import get_classifier, runtime_report
from diagnosis.models import Analysis, AnalysisStatus, ImageEmbedding
from ml.classes import CLASSES
from ml.export import write_model_dir
from ml.inference import Classifier
from ml.metadata import N_FEATURES
from ml.onnx_serving import OnnxClassifier
from ml.preprocessing import PreprocessConfig
from ml.runtime_choice import choose
from ml.runtimes import export_onnx, file_sha256
from tests import factories
from tests.ml.conftest import random_lesionnet, v2_card
from tests.worker import REPO_ROOT, _environment, require_shared_services

SHIPPED_ROOT = Path(settings.BASE_DIR) / "ml" / "models"
SAMPLE = Path(settings.BASE_DIR) / "samples" / "mel_ISIC_0024481.jpg"


@pytest.fixture(scope="module")
def onnx_models_root(tmp_path_factory) -> Path:
    """A models folder whose CURRENT model has a servable onnx-fp32 form and a failed int8."""
    root = tmp_path_factory.mktemp("runtime-models")
    network = random_lesionnet(True, seed=7)
    config = PreprocessConfig(input_size=128)
    model_dir = write_model_dir(
        root, "v-onnx", network.state_dict(), v2_card(config, use_metadata=True)
    )
    export_onnx(network, config.input_size, N_FEATURES, model_dir / "model.onnx")
    card = json.loads((model_dir / "card.json").read_text())
    sha = file_sha256(model_dir / "model.onnx")
    card["runtimes"] = {
        "onnx-fp32": {"file": "model.onnx", "sha256": sha, "servable": True, "parity": {}},
        "onnx-int8": {
            "file": "model.onnx",
            "sha256": sha,
            "servable": False,
            "parity": {"top1_agreement": 0.88},
        },
    }
    (model_dir / "card.json").write_text(json.dumps(card))
    return root


@pytest.fixture
def served_from(settings, onnx_models_root, tmp_path):
    settings.ML_MODELS_ROOT = onnx_models_root
    settings.VAR_DIR = tmp_path
    get_classifier.cache_clear()
    yield settings
    get_classifier.cache_clear()


@pytest.mark.django_db
def test_ml_runtime_forces_onnx_and_the_worker_serves_it_without_the_torch_network(served_from):
    served_from.ML_RUNTIME = "onnx-fp32"

    classifier = get_classifier()

    assert isinstance(classifier, OnnxClassifier) and classifier.runtime == "onnx-fp32"
    assert runtime_report()["runtime"] == "onnx-fp32"
    assert runtime_report()["reason"] == "forced by ML_RUNTIME"


@pytest.mark.django_db
def test_ml_runtime_torch_serves_the_pytorch_reference(served_from):
    served_from.ML_RUNTIME = "torch"

    classifier = get_classifier()

    assert isinstance(classifier, Classifier) and classifier.runtime == "torch"


@pytest.mark.django_db
def test_forcing_a_runtime_that_failed_parity_is_refused_in_words(served_from):
    served_from.ML_RUNTIME = "onnx-int8"
    with pytest.raises(ValueError, match="has no servable onnx-int8 form.*torch, onnx-fp32"):
        get_classifier()
    served_from.ML_RUNTIME = "onnx-fast"
    with pytest.raises(ValueError, match="ML_RUNTIME='onnx-fast' is not a runtime; use auto"):
        get_classifier()


def test_auto_times_each_servable_runtime_and_picks_the_fastest(onnx_models_root):
    choice = choose(onnx_models_root / "v-onnx", "auto", threads=1, seconds=0.3)

    # torch (the card's runtime, timed in a child process) and onnx-fp32; int8 failed parity.
    assert set(choice.images_per_s) == {"torch", "onnx-fp32"}
    assert all(rate > 0 for rate in choice.images_per_s.values())
    assert choice.runtime == max(choice.images_per_s, key=choice.images_per_s.get)
    assert choice.setting == "auto" and "fastest of 2 measured" in choice.reason


def test_auto_without_an_accelerated_form_serves_torch_untimed(tmp_path):
    config = PreprocessConfig(input_size=128)
    model_dir = write_model_dir(
        tmp_path, "v", random_lesionnet(False).state_dict(), v2_card(config, use_metadata=False)
    )
    choice = choose(model_dir, "auto")

    assert (choice.runtime, choice.images_per_s) == ("torch", {})


@pytest.mark.django_db
def test_readyz_shows_the_runtime_auto_chose_and_what_it_measured(served_from, client):
    served_from.ML_RUNTIME = "auto"
    classifier = get_classifier()

    body = json.loads(client.get("/readyz").content)

    assert body["runtime"]["runtime"] == classifier.runtime
    assert body["runtime"]["setting"] == "auto"
    assert body["runtime"]["version"] == "v-onnx"
    assert set(body["runtime"]["images_per_s"]) == {"torch", "onnx-fp32"}


@pytest.mark.django_db
def test_readyz_reads_the_workers_record_from_var_when_the_cache_is_the_process_own(
    served_from, client
):
    """On the embedded defaults the cache is each process's memory: the web process reads
    the record the worker on its host left in var/."""
    served_from.ML_RUNTIME = "onnx-fp32"
    get_classifier()
    cache.clear()

    body = json.loads(client.get("/readyz").content)

    assert body["runtime"]["runtime"] == "onnx-fp32"
    assert body["runtime"]["reason"] == "forced by ML_RUNTIME"


# --- a worker serving ONNX, end to end, in its own process (a) -----------------------------

WORKER_SCRIPT = """
import json, sys
import django
django.setup()
from diagnosis import tasks
from diagnosis.models import Analysis
tasks.load_classifier_at_start()  # what a worker process runs as it starts
outcome = tasks.analyse_image.apply(args=[int(sys.argv[1])]).get()
print(json.dumps({"outcome": outcome, "torch": sorted(m for m in sys.modules if m == "torch"
      or m.startswith(("torch.", "torchvision", "timm")))}))
"""


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worker_serving_onnx_analyses_an_upload_without_importing_torch(settings):
    require_shared_services()
    version = (SHIPPED_ROOT / "CURRENT").read_text().strip()
    gate = json.loads((SHIPPED_ROOT / version / "gate.json").read_text())
    card = json.loads((SHIPPED_ROOT / version / "card.json").read_text())
    if "features_onnx" not in gate or not card.get("runtimes", {}).get("onnx-fp32"):
        pytest.skip(f"{version} ships no ONNX forms of its network and gate features")
    settings.ML_MODELS_ROOT = SHIPPED_ROOT
    clinic = factories.ClinicFactory()
    staff = factories.UserFactory(clinic=clinic)
    lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
    upload = SimpleUploadedFile(SAMPLE.name, SAMPLE.read_bytes(), content_type="image/jpeg")
    analysis = services.image_upload(actor=staff, lesion=lesion, upload=upload)

    done = subprocess.run(  # noqa: S603 - this interpreter, our script
        [sys.executable, "-c", WORKER_SCRIPT, str(analysis.pk)],
        cwd=REPO_ROOT,
        env=_environment({"ML_RUNTIME": "onnx-fp32"}),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"outcome": AnalysisStatus.DONE, "torch": []}, done.stderr[-3000:]
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.DONE
    assert set(analysis.probabilities) == set(CLASSES)
    assert sum(analysis.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert analysis.triage_level and analysis.risk_tier
    assert analysis.timings_ms["runtime"] == "onnx-fp32"
    assert "gate" in analysis.timings_ms  # the gate looked and let it through
    assert analysis.gate_reason == ""
    assert analysis.heatmap_top and analysis.heatmap_melanoma
    assert ImageEmbedding.objects.filter(analysis=analysis).exists()
    assert Analysis.objects.get(pk=analysis.pk).model_version == version
