"""manage.py reanalyse: the chosen lesions' images analysed again with the served version, in
this process, through the worker's batch path, with a summary at the end."""

from __future__ import annotations

import io
import shutil

import pytest
from django.core.management import CommandError, call_command

from diagnosis.models import Analysis, AnalysisStatus
from tests import factories
from tests.diagnosis.watch import watch_batches


@pytest.fixture
def network_calls(promoted, monkeypatch):
    """Images per predict_batch call of the served classifier (the real method runs)."""
    from diagnosis.classifier import get_classifier

    return watch_batches(get_classifier(), monkeypatch)


@pytest.fixture
def no_tasks(monkeypatch):
    from diagnosis import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks.analyse_image, "delay", sent.append)
    monkeypatch.setattr(tasks.analyse_image, "delay_on_commit", sent.append)
    return sent


def _analysed_images(lesion, n: int) -> list[Analysis]:
    return [
        factories.DoneAnalysisFactory(
            image=factories.DermoscopicImageFactory(lesion=lesion, sample=True),
            model_version="old-v1",
        )
        for _ in range(n)
    ]


def _reanalyse(superuser, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "reanalyse", *args, "--by", superuser.email, "--reason", "new-v2 promoted",
        stdout=out, stderr=err,
    )  # fmt: skip
    return out.getvalue(), err.getvalue()


def test_the_chosen_lesions_run_in_batches_and_the_summary_counts_them(
    network_calls, no_tasks, superuser, lesion, patient
):
    earlier = _analysed_images(lesion, 3)
    other_lesion = factories.LesionFactory(patient=patient)
    untouched = _analysed_images(other_lesion, 1)

    out, err = _reanalyse(
        superuser, "--model", "new-v2", "--lesions", str(lesion.pk), "--batch-size", "2"
    )

    assert network_calls == [2, 1]  # two batches, not three single calls
    new = Analysis.objects.filter(image__lesion=lesion, model_version="new-v2")
    assert new.count() == 3 and all(a.status == AnalysisStatus.DONE for a in new)
    assert sorted(a.timings_ms["batch_size"] for a in new) == [1, 2, 2]
    assert all(Analysis.objects.get(pk=a.pk).model_version == "old-v1" for a in earlier)
    assert not Analysis.objects.filter(image__lesion=other_lesion).exclude(pk=untouched[0].pk)
    assert no_tasks == []  # run here, not one task per image
    assert "3 images to analyse with new-v2." in out
    assert "Done: 3. Refused by the image gate: 0. Failed: 0. Skipped: 0." in out
    assert "3/3" in err  # the progress bar


def test_a_second_run_skips_what_the_version_has_analysed(promoted, no_tasks, superuser, lesion):
    _analysed_images(lesion, 2)
    _reanalyse(superuser, "--model", "new-v2", "--lesions", str(lesion.pk))

    out, _ = _reanalyse(superuser, "--model", "new-v2", "--lesions", str(lesion.pk))

    assert "Done: 0. Refused by the image gate: 0. Failed: 0. Skipped: 2." in out
    assert "Skipped 2: analysed by new-v2 already, or waiting." in out


def test_a_clinic_chooses_all_its_lesions(promoted, no_tasks, superuser, lesion, clinic):
    _analysed_images(lesion, 2)
    elsewhere = factories.LesionFactory()
    _analysed_images(elsewhere, 1)

    out, _ = _reanalyse(superuser, "--model", "new-v2", "--clinic", clinic.name)

    assert "Done: 2." in out
    assert not Analysis.objects.filter(image__lesion=elsewhere, model_version="new-v2").exists()


def test_a_corrupt_image_fails_alone_and_is_counted(promoted, no_tasks, superuser, lesion):
    _analysed_images(lesion, 2)
    factories.DoneAnalysisFactory(
        image=factories.DermoscopicImageFactory(
            lesion=lesion, file=factories.ContentFile(b"not an image", name="x.jpg")
        ),
        model_version="old-v1",
    )

    out, _ = _reanalyse(superuser, "--model", "new-v2", "--lesions", str(lesion.pk))

    assert "Done: 2. Refused by the image gate: 0. Failed: 1. Skipped: 0." in out
    failed = Analysis.objects.get(model_version="", status=AnalysisStatus.FAILED)
    assert failed.failure_reason == "The stored image could not be read; please upload it again."


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("no-such-version", "No model version 'no-such-version' in the registry"),
        ("old-v1", "old-v1 is retired, not the version the portal serves (new-v2)"),
    ],
)
def test_a_version_that_cannot_serve_is_refused_in_words(
    promoted, superuser, lesion, version, message
):
    _analysed_images(lesion, 1)
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _reanalyse(superuser, "--model", version, "--lesions", str(lesion.pk))
    assert Analysis.objects.count() == 1


def test_a_version_not_installed_here_is_refused_in_words(promoted, superuser, lesion):
    _analysed_images(lesion, 1)
    shutil.rmtree(promoted / "new-v2")

    with pytest.raises(CommandError, match="new-v2 is in the registry but not installed"):
        _reanalyse(superuser, "--model", "new-v2", "--lesions", str(lesion.pk))


def test_lesions_without_analysed_images_are_refused_in_words(promoted, superuser, lesion):
    with pytest.raises(CommandError, match=f"No analysed images on lesion\\(s\\) {lesion.pk}"):
        _reanalyse(superuser, "--model", "new-v2", "--lesions", str(lesion.pk))
    with pytest.raises(CommandError, match="--batch-size must be 1 or more, not 0"):
        _reanalyse(superuser, "--model", "new-v2", "--batch-size", "0")
