"""The model comparison page: how a version running in shadow compares with the served one on
this clinic's own uploads (clinic admins). Counts only; no patient is named."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.audit import audit_record
from accounts.decorators import clinic_role_required
from accounts.models import Role
from diagnosis.models import ModelStatus
from diagnosis.selectors import model_version as selectors


@clinic_role_required(Role.ADMIN)
def model_comparison(request: HttpRequest) -> HttpResponse:
    rows = selectors.shadow_comparison(user=request.user)
    # Derived from the clinic's analyses: audited like the histology agreement page.
    audit_record(
        action="model.comparison_view",
        request=request,
        versions=[row.version for row in rows],
        results=sum(row.results for row in rows),
    )
    context = {
        "rows": rows,
        "active": selectors.version_with_status(ModelStatus.ACTIVE),
        "shadow": selectors.version_with_status(ModelStatus.SHADOW),
    }
    return render(request, "diagnosis/model_comparison.html", context)
