"""Report downloads: the PDF and the HTML print view of one analysis.

The analysis is fetched through the clinic-scoped selector, so another clinic's analysis is a
404 exactly like a missing one. An analysis with no result gets a page saying why.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.text import slugify

from accounts.audit import audit_record
from accounts.decorators import clinic_role_required
from diagnosis.models import Analysis
from diagnosis.selectors import analysis_get
from reports import services


def _unavailable(request: HttpRequest, analysis: Analysis, reason: str) -> HttpResponse:
    # 409: the request is fine, the analysis is not in a state that has a report yet.
    return render(
        request,
        "reports/report_unavailable.html",
        {"analysis": analysis, "reason": reason},
        status=409,
    )


def pdf_attachment(analysis: Analysis, pdf: bytes) -> HttpResponse:
    """The PDF as a download named by the patient's MRN slug and the analysis id, never cached
    (the page's link and the REST API answer with this same response)."""
    patient = analysis.image.lesion.patient
    name = f"report-{slugify(patient.mrn) or 'patient'}-analysis-{analysis.pk}.pdf"
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


@clinic_role_required()
def analysis_pdf(request: HttpRequest, analysis_id: int) -> HttpResponse:
    analysis = analysis_get(user=request.user, analysis_id=analysis_id)
    try:
        pdf = services.render_analysis_pdf(user=request.user, analysis=analysis)
    except services.ReportUnavailable as unavailable:
        return _unavailable(request, analysis, unavailable.reason)
    audit_record(action="report.download", request=request, obj=analysis, format="pdf")
    return pdf_attachment(analysis, pdf)


@clinic_role_required()
def analysis_print(request: HttpRequest, analysis_id: int) -> HttpResponse:
    analysis = analysis_get(user=request.user, analysis_id=analysis_id)
    try:
        html = services.render_analysis_html(user=request.user, analysis=analysis)
    except services.ReportUnavailable as unavailable:
        return _unavailable(request, analysis, unavailable.reason)
    audit_record(action="report.download", request=request, obj=analysis, format="html")
    response = HttpResponse(html)
    response["Cache-Control"] = "no-store"
    return response
