"""REST API for analyses: the status while waiting, the result when done, the FHIR export."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.audit import audit_record
from diagnosis import fhir, presentation
from diagnosis.models import (
    Analysis,
    AnalysisStatus,
)
from diagnosis.selectors.analysis import analysis_get, analysis_list, queue_position
from melanoma_portal.api_errors import error_body, parse_id


def status_url(request: Request, analysis: Analysis) -> str:
    return request.build_absolute_uri(reverse("api:analysis-detail", args=[analysis.pk]))


class AnalysisResult(serializers.Serializer):
    probabilities = serializers.DictField(
        child=serializers.FloatField(),
        help_text="Calibrated probability of each class code (akiec, bcc, bkl, df, mel, nv, "
        "vasc); they sum to 1.",
    )
    class_names = serializers.DictField(child=serializers.CharField())
    top_class = serializers.CharField()
    top_class_name = serializers.CharField()
    melanoma_probability = serializers.FloatField()
    risk_tier = serializers.ChoiceField(choices=["low", "moderate", "high"])
    model_version = serializers.CharField()
    metadata_used = serializers.ListField(
        child=serializers.ChoiceField(choices=["age", "sex", "site"]),
        help_text="Which of the lesion's recorded age, sex and anatomic site the model read "
        "besides the image; empty when it read the image only.",
    )


class AnalysisOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=AnalysisStatus.choices)
    status_url = serializers.SerializerMethodField()
    patient = serializers.IntegerField(source="image.lesion.patient_id")
    lesion = serializers.IntegerField(source="image.lesion_id")
    image = serializers.IntegerField(source="image_id")
    queued_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    failure_reason = serializers.CharField(
        help_text="Why a failed analysis failed, in words to show; empty otherwise."
    )
    result = serializers.SerializerMethodField()
    disclaimer = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_status_url(self, analysis: Analysis) -> str:
        return status_url(self.context["request"], analysis)

    @extend_schema_field(AnalysisResult(allow_null=True))
    def get_result(self, analysis: Analysis) -> dict | None:
        if analysis.status != AnalysisStatus.DONE:
            return None
        return AnalysisResult(
            {
                "probabilities": analysis.probabilities,
                "class_names": {
                    code: presentation.class_name(code) for code in analysis.probabilities
                },
                "top_class": analysis.top_class,
                "top_class_name": presentation.class_name(analysis.top_class),
                "melanoma_probability": analysis.melanoma_probability,
                "risk_tier": analysis.risk_tier,
                "model_version": analysis.model_version,
                "metadata_used": analysis.metadata_used or [],
            }
        ).data

    def get_disclaimer(self, analysis: Analysis) -> str:
        return presentation.DISCLAIMER


class AnalysisDetailOutput(AnalysisOutput):
    queue_position = serializers.SerializerMethodField(
        help_text="1 for the next analysis a worker takes; null once it is no longer waiting."
    )

    def get_queue_position(self, analysis: Analysis) -> int | None:
        return queue_position(analysis=analysis)


class AnalysisFilter(serializers.Serializer):
    patient = serializers.IntegerField(min_value=1, required=False)
    lesion = serializers.IntegerField(min_value=1, required=False)
    status = serializers.ChoiceField(choices=AnalysisStatus.choices, required=False)


class FHIRJSONRenderer(JSONRenderer):
    media_type = "application/fhir+json"
    format = "fhir"


class AnalysisViewSet(viewsets.GenericViewSet):
    """Analyses of the clinic's images: poll the status; when done, read the result."""

    lookup_value_regex = r"[^/]+"  # checked by parse_id: bad ids get a JSON 404
    queryset = Analysis.objects.none()  # schema only; reads go through diagnosis.selectors
    serializer_class = AnalysisOutput

    @extend_schema(
        summary="List the clinic's analyses, newest first",
        parameters=[
            OpenApiParameter("patient", int, description="Only this patient's analyses"),
            OpenApiParameter("lesion", int, description="Only this lesion's analyses"),
            OpenApiParameter("status", str, enum=list(AnalysisStatus.values)),
        ],
        responses=AnalysisOutput(many=True),
    )
    def list(self, request: Request) -> Response:
        query = AnalysisFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = query.validated_data
        analyses = analysis_list(user=request.user)
        if "patient" in filters:
            analyses = analyses.filter(image__lesion__patient_id=filters["patient"])
        if "lesion" in filters:
            analyses = analyses.filter(image__lesion_id=filters["lesion"])
        if "status" in filters:
            analyses = analyses.filter(status=filters["status"])
        page = self.paginate_queryset(analyses)
        audit_record(
            action="analysis.list",
            request=request,
            patient_id=filters.get("patient"),
            count=len(page or []),
        )
        data = AnalysisOutput(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)

    @extend_schema(
        summary="The status of an analysis and, when done, its result",
        responses=AnalysisDetailOutput,
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        analysis = analysis_get(user=request.user, analysis_id=parse_id(pk, "analysis"))
        audit_record(action="analysis.view", request=request, obj=analysis)
        return Response(AnalysisDetailOutput(analysis, context={"request": request}).data)

    @extend_schema(
        summary="The analysis as a FHIR R4 Bundle (DiagnosticReport, Observations, Media, Patient)",
        responses={
            (200, "application/fhir+json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="A FHIR collection Bundle"
            ),
            (409, "application/fhir+json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="The analysis is not done yet."
            ),
        },
    )
    @action(detail=True, methods=["get"], url_path="fhir", renderer_classes=[FHIRJSONRenderer])
    def fhir(self, request: Request, pk: str) -> Response:
        analysis = analysis_get(user=request.user, analysis_id=parse_id(pk, "analysis"))
        if analysis.status != AnalysisStatus.DONE:
            return _not_done(analysis, "FHIR export")
        bundle = fhir.analysis_bundle(analysis=analysis, base_url=request.build_absolute_uri("/"))
        audit_record(action="analysis.fhir_export", request=request, obj=analysis)
        return Response(bundle)


def _not_done(analysis: Analysis, what: str) -> Response:
    message = (
        f"The analysis is {analysis.get_status_display().lower()}; the {what} is available "
        "once its status is done."
    )
    if analysis.status == AnalysisStatus.FAILED:
        message = f"The analysis failed ({analysis.failure_reason}); there is no {what}."
    return Response(error_body(409, message), status=status.HTTP_409_CONFLICT)
