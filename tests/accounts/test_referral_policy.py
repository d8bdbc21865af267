"""A clinic admin sets how long the clinic's referrals have; new referrals are due by it."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.services.clinic import clinic_set_referral_policy


def test_admin_sets_the_policy_through_the_page_and_it_is_audited(client, clinic, clinic_admin):
    client.force_login(clinic_admin)
    url = reverse("accounts:referral_policy")
    assert 'value="14"' in client.get(url).content.decode()

    response = client.post(url, {"referral_days_urgent": "10", "referral_days_soon": "28"})

    assert response.status_code == 302
    clinic.refresh_from_db()
    assert (clinic.referral_days_urgent, clinic.referral_days_soon) == (10, 28)
    event = AuditEvent.objects.get(action="clinic.referral_policy")
    assert event.detail == {
        "before": {"urgent": 14, "soon": 42},
        "after": {"urgent": 10, "soon": 28},
    }
    assert event.user == clinic_admin


def test_a_soon_referral_cannot_be_due_before_an_urgent_one(client, clinic, clinic_admin):
    client.force_login(clinic_admin)

    response = client.post(
        reverse("accounts:referral_policy"),
        {"referral_days_urgent": "30", "referral_days_soon": "7"},
    )

    assert response.status_code == 400
    assert "A soon referral cannot be due before an urgent one." in response.content.decode()
    with pytest.raises(ValidationError) as raised:
        clinic_set_referral_policy(actor=clinic_admin, referral_days_urgent=0, referral_days_soon=7)
    assert "referral_days_urgent" in raised.value.message_dict
    clinic.refresh_from_db()
    assert clinic.referral_days_urgent == 14


def test_only_the_clinic_admin_sets_the_policy(client, doctor, staff):
    for user in (doctor, staff):
        with pytest.raises(PermissionDenied):
            clinic_set_referral_policy(actor=user, referral_days_urgent=7, referral_days_soon=14)
        client.force_login(user)
        assert client.get(reverse("accounts:referral_policy")).status_code == 403
