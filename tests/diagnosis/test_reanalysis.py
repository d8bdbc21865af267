"""Re-analysis after a promotion: a new analysis of the same image, made by the active version;
the earlier result stays as it was, and the patient's page lists both."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.urls import reverse

from accounts.models import AuditEvent
from diagnosis import services
from diagnosis.models import Analysis, AnalysisStatus
from diagnosis.tasks import analyse_image
from tests import factories


def test_reanalysis_keeps_the_earlier_result_and_the_patient_page_shows_both(
    promoted, superuser, lesion, client, doctor, django_capture_on_commit_callbacks
):
    image = factories.DermoscopicImageFactory(lesion=lesion, sample=True)
    earlier = factories.DoneAnalysisFactory(image=image, model_version="old-v1")
    before = Analysis.objects.values().get(pk=earlier.pk)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        created, skipped = services.analyses_reanalyse(
            actor=superuser, analysis_ids=[earlier.pk], reason="new-v2 promoted"
        )
    assert len(queued) == 1 and skipped == {}
    analyse_image(created[0].pk)

    new = Analysis.objects.get(pk=created[0].pk)
    assert new.image == image and new.status == AnalysisStatus.DONE
    assert new.model_version == "new-v2"
    assert Analysis.objects.values().get(pk=earlier.pk) == before  # untouched
    event = AuditEvent.objects.get(action="analysis.reanalyse")
    assert event.patient_id == lesion.patient_id
    assert (event.detail["earlier_analysis"], event.detail["version"]) == (earlier.pk, "new-v2")
    client.force_login(doctor)
    page = client.get(reverse("patients:detail", args=[lesion.patient_id])).content.decode()
    assert "old-v1" in page and "new-v2" in page


def test_cases_already_analysed_by_the_active_version_or_without_an_image_are_left_alone(
    promoted, superuser, lesion
):
    current = factories.DoneAnalysisFactory(image__lesion=lesion, model_version="new-v2")
    purged = factories.DoneAnalysisFactory(
        image__lesion=lesion, image__file="", model_version="old-v1"
    )

    call_args = {"analysis_ids": [current.pk, purged.pk, 999999], "reason": "Check"}
    created, skipped = services.analyses_reanalyse(actor=superuser, **call_args)

    assert created == []
    assert skipped == {
        "analysed by new-v2 already, or waiting": 1,
        "image no longer kept": 1,
        "no such analysis": 1,
    }


def test_only_a_superuser_reanalyses(promoted, clinic_admin, lesion):
    earlier = factories.DoneAnalysisFactory(image__lesion=lesion, model_version="old-v1")

    with pytest.raises(PermissionDenied):
        services.analyses_reanalyse(actor=clinic_admin, analysis_ids=[earlier.pk], reason="x")


def test_command_chooses_every_result_of_a_version(promoted, superuser, lesion, capsys):
    for _ in range(2):
        factories.DoneAnalysisFactory(image__lesion=lesion, model_version="old-v1")

    call_command("model_reanalyse", made_by="old-v1", by=superuser.email, reason="Promoted")

    assert "2 new analyses queued." in capsys.readouterr().out
    assert Analysis.objects.filter(status=AnalysisStatus.QUEUED).count() == 2
