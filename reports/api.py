"""REST API for reports: the A4 PDF of an analysis, from the same service as the download link."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import audit_record
from diagnosis.selectors import analysis_get
from melanoma_portal.api_errors import error_body, parse_id
from reports import services
from reports.views import pdf_attachment


class AnalysisReportPDF(APIView):
    """The analysis's PDF report; 409 with the reason while it has no result."""

    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # The PDF itself is an HttpResponse; everything else (404, 401, 409) is a JSON error,
        # even for a client that sent Accept: application/pdf.
        return (JSONRenderer(), JSONRenderer.media_type)

    @extend_schema(
        summary="The analysis's report as an A4 PDF",
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="PDF"),
            (409, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="The analysis has no result (yet)."
            ),
        },
    )
    def get(self, request: Request, analysis_id: str) -> HttpResponse | Response:
        analysis = analysis_get(user=request.user, analysis_id=parse_id(analysis_id, "analysis"))
        try:
            pdf = services.render_analysis_pdf(user=request.user, analysis=analysis)
        except services.ReportUnavailable as unavailable:
            return Response(error_body(409, unavailable.reason), status=409)
        audit_record(action="report.download", request=request, obj=analysis, format="pdf")
        return pdf_attachment(analysis, pdf)
