"""REST API for analyses: the status while waiting, the result when done (or the image gate's
refusal when not analysed), the FHIR export, and a doctor's override of the gate."""

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
from accounts.models import Role
from accounts.permissions import require_role
from diagnosis import fhir, presentation
from diagnosis.models import (
    Analysis,
    AnalysisStatus,
    TriageLevel,
)
from diagnosis.selectors.analysis import analysis_get, analysis_list, queue_position
from diagnosis.selectors.analysis_wait import analysis_wait, wait_seconds
from diagnosis.services.analysis import analysis_override_gate
from melanoma_portal.api_errors import error_body, parse_id
from melanoma_portal.throttling import StatusRateThrottle


def status_url(request: Request, analysis: Analysis) -> str:
    return request.build_absolute_uri(reverse("api:analysis-detail", args=[analysis.pk]))


class TriageOutput(serializers.Serializer):
    level = serializers.ChoiceField(choices=TriageLevel.values)
    label = serializers.CharField()
    reason = serializers.CharField(
        help_text="The finding that set the level, e.g. 'BCC 96%'; empty for routine."
    )
    text = serializers.CharField(help_text="Level and reason to show, e.g. 'Soon — BCC 96%'.")
    means = serializers.CharField(help_text="What the level asks of the clinic.")
    does_not_mean = serializers.CharField(
        help_text="What the level must not be read as (routine is not 'benign')."
    )


def triage_output(analysis: Analysis) -> dict | None:
    shown = presentation.triage_of(analysis)
    if shown is None:
        return None
    return TriageOutput(
        {
            "level": shown.level,
            "label": shown.label,
            "reason": shown.reason,
            "text": shown.text,
            "means": shown.wording.means,
            "does_not_mean": shown.wording.does_not_mean,
        }
    ).data


class OutsideValidatedUseOutput(serializers.Serializer):
    label = serializers.CharField()
    text = serializers.CharField(help_text="The mark in words, to show with the result.")
    gate_reason = serializers.CharField(help_text="Why the image gate refused the image.")
    overridden_by = serializers.CharField()
    overridden_at = serializers.DateTimeField()
    reason = serializers.CharField(help_text="The doctor's written reason for the override.")


def outside_validated_use_output(analysis: Analysis) -> dict | None:
    mark = presentation.override_of(analysis)
    if mark is None:
        return None
    return OutsideValidatedUseOutput(
        {
            "label": mark.label,
            "text": mark.text,
            "gate_reason": mark.gate_reason,
            "overridden_by": mark.by,
            "overridden_at": mark.at,
            "reason": mark.reason,
        }
    ).data


class GateRefusalOutput(serializers.Serializer):
    reason_code = serializers.CharField(
        help_text="The gate's reason: not_dermoscopic, too_small, blurred, too_dark, "
        "too_bright or uniform."
    )
    reason = serializers.CharField(help_text="The reason in plain words.")
    headline = serializers.CharField(help_text="'Not analysed: <reason>.'")
    advice = serializers.CharField(help_text="What to do: how to retake the image.")
    explanation = serializers.CharField(help_text="Why no result is given.")
    text = serializers.CharField(help_text="All of the above in one paragraph, to show.")
    gate_message = serializers.CharField(help_text="The gate's own words.")
    measures = serializers.JSONField(
        help_text="What the gate measured: image quality, and the out-of-distribution score "
        "with its threshold (null when a quality check refused the image first)."
    )
    model_version = serializers.CharField(help_text="The model whose gate refused the image.")


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
    triage = TriageOutput(
        allow_null=True,
        help_text="The clinical triage of every skin cancer with its reason; null for a result "
        "of a model without triage (read risk_tier, the melanoma risk tier, instead).",
    )
    outside_validated_use = OutsideValidatedUseOutput(
        allow_null=True,
        help_text="Set when a doctor overrode the image gate to have this image analysed: the "
        "result is outside the model's validated use. Null otherwise.",
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
    not_analysed = serializers.SerializerMethodField()
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
                "triage": triage_output(analysis),
                "outside_validated_use": outside_validated_use_output(analysis),
            }
        ).data

    @extend_schema_field(GateRefusalOutput(allow_null=True))
    def get_not_analysed(self, analysis: Analysis) -> dict | None:
        """Why the image gate refused the image, and what to do; null unless the status is
        not_analysed (no prediction was made, so `result` is null)."""
        refusal = presentation.refusal_of(analysis)
        if refusal is None:
            return None
        return GateRefusalOutput(
            {
                "reason_code": refusal.reason_code,
                "reason": refusal.reason,
                "headline": refusal.headline,
                "advice": refusal.advice,
                "explanation": refusal.explanation,
                "text": refusal.text,
                "gate_message": analysis.gate_message,
                "measures": analysis.gate_measures,
                "model_version": analysis.model_version,
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


class GateOverrideInput(serializers.Serializer):
    reason = serializers.CharField(
        max_length=2000,
        help_text="Why this image should be analysed although the gate refused it; shown with "
        "the result, with the doctor's name.",
    )


class AnalysisFilter(serializers.Serializer):
    patient = serializers.IntegerField(min_value=1, required=False)
    lesion = serializers.IntegerField(min_value=1, required=False)
    status = serializers.ChoiceField(choices=AnalysisStatus.choices, required=False)


class SimilarCaseOutput(serializers.Serializer):
    analysis = serializers.IntegerField()
    image = serializers.IntegerField()
    lesion = serializers.IntegerField()
    thumbnail_url = serializers.CharField(help_text="The image's thumbnail (session or token).")
    diagnosis = serializers.CharField(help_text="The final diagnosis's code.")
    diagnosis_label = serializers.CharField()
    confirmed_by = serializers.ChoiceField(choices=["histology", "review"])
    distance = serializers.FloatField(help_text="Cosine distance of the embeddings, 0 to 2.")


class SimilarCasesOutput(serializers.Serializer):
    analysis = serializers.IntegerField()
    available = serializers.BooleanField(
        help_text="False when the result has no embedding (a model without one)."
    )
    cases = SimilarCaseOutput(many=True, help_text="Nearest first, one per lesion.")
    disclaimer = serializers.CharField()


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
        # The patient is named only when the answer holds their records: a filter that matched
        # nothing (another clinic's patient id, say) read nothing of anyone.
        audit_record(
            action="analysis.list",
            request=request,
            patient_id=filters.get("patient") if page else None,
            count=len(page or []),
        )
        data = AnalysisOutput(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)

    def get_throttles(self):
        # Status reads have their own budget (the `status` rate), so waiting for many results
        # never uses up the uploads' or anything else's.
        if self.action == "retrieve":
            return [StatusRateThrottle()]
        return super().get_throttles()

    @extend_schema(
        summary="The status of an analysis and, when done, its result",
        description="With `wait` (seconds, up to STATUS_WAIT_MAX_S, 25 by default) the answer "
        "waits until the status changes or the time is up, so a client that asks again at "
        "once sees a result within about 0.1 s of it being stored. The `X-Status-Held` "
        "header says how long this answer was allowed to wait: 0 means it answered at once "
        "(the server's waiting places were taken), so pause before asking again.",
        parameters=[
            OpenApiParameter(
                "wait", float, description="Seconds to wait for the status to change (0-25)"
            )
        ],
        responses=AnalysisDetailOutput,
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        try:
            seconds = wait_seconds(request.query_params.get("wait"))
        except ValueError as error:
            return Response(error_body(400, str(error)), status=status.HTTP_400_BAD_REQUEST)
        analysis = analysis_get(user=request.user, analysis_id=parse_id(pk, "analysis"))
        held = analysis_wait(analysis=analysis, seconds=seconds)
        audit_record(action="analysis.view", request=request, obj=analysis)
        body = AnalysisDetailOutput(analysis, context={"request": request}).data
        return Response(body, headers={"X-Status-Held": f"{held:g}"})

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
        if analysis.status not in (AnalysisStatus.DONE, AnalysisStatus.NOT_ANALYSED):
            return _not_done(analysis, "FHIR export")
        bundle = fhir.analysis_bundle(analysis=analysis, base_url=request.build_absolute_uri("/"))
        audit_record(action="analysis.fhir_export", request=request, obj=analysis)
        return Response(bundle)

    @extend_schema(
        summary="Have an image the gate refused analysed anyway (doctors; a written reason)",
        description="Queues a not_analysed analysis again; the worker predicts without the "
        "image gate and the result is marked outside validated use, with this reason and the "
        "doctor's name. A second override of the same analysis is refused with 409.",
        request=GateOverrideInput,
        responses={
            202: AnalysisDetailOutput,
            409: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Nothing to override: the gate did not refuse this analysis's "
                "image, or a doctor has overridden it already.",
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path="override")
    def override(self, request: Request, pk: str) -> Response:
        analysis = analysis_get(user=request.user, analysis_id=parse_id(pk, "analysis"))
        require_role(request.user, Role.DOCTOR)  # before the input: staff get 403, not 400
        data = GateOverrideInput(data=request.data)
        data.is_valid(raise_exception=True)
        analysis = analysis_override_gate(
            actor=request.user,
            analysis=analysis,
            reason=data.validated_data["reason"],
            request=request,
        )
        url = status_url(request, analysis)
        body = AnalysisDetailOutput(analysis, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})

    @extend_schema(
        summary="The clinic's 5 confirmed cases most like this result (doctors)",
        description="The nearest images by the classifier's embedding among this clinic's "
        "images of other lesions that have a histology result or a doctor's signed review, "
        "one per lesion, with the final diagnosis. Never another clinic's images.",
        responses=SimilarCasesOutput,
    )
    @action(detail=True, methods=["get"], url_path="similar")
    def similar(self, request: Request, pk: str) -> Response:
        return _similar_action(self, request, pk)


def _similar_action(viewset, request: Request, pk: str) -> Response:
    from diagnosis.selectors.similar import similar_cases

    analysis = analysis_get(user=request.user, analysis_id=parse_id(pk, "analysis"))
    require_role(request.user, Role.DOCTOR)
    if analysis.status != AnalysisStatus.DONE:
        return _not_done(analysis, "similar cases")
    cases = similar_cases(user=request.user, analysis=analysis)
    audit_record(
        action="analysis.similar_cases",
        request=request,
        obj=analysis,
        similar_cases=[case.analysis.pk for case in cases or []],
    )
    body = SimilarCasesOutput(
        {
            "analysis": analysis.pk,
            "available": cases is not None,
            "cases": [
                {
                    "analysis": case.analysis.pk,
                    "image": case.analysis.image_id,
                    "lesion": case.analysis.image.lesion_id,
                    "thumbnail_url": request.build_absolute_uri(
                        reverse("diagnosis:image", args=[case.analysis.image_id]) + "?size=thumb"
                    ),
                    "diagnosis": case.diagnosis,
                    "diagnosis_label": case.diagnosis_label,
                    "confirmed_by": case.confirmed_by,
                    "distance": round(case.distance, 4),
                }
                for case in cases or []
            ],
            "disclaimer": presentation.DISCLAIMER,
        }
    ).data
    return Response(body)


def _not_done(analysis: Analysis, what: str) -> Response:
    message = (
        f"The analysis is {analysis.get_status_display().lower()}; the {what} is available "
        "once its status is done."
    )
    if analysis.status == AnalysisStatus.FAILED:
        message = f"The analysis failed ({analysis.failure_reason}); there is no {what}."
    return Response(error_body(409, message), status=status.HTTP_409_CONFLICT)
