"""REST API for lesions, dermoscopic image uploads, analyses, reviews and the FHIR export.

The endpoints call the same selectors and services as the pages (one way to upload an image),
so the clinic scoping, role checks, upload validation and audit events are the portal's own.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.audit import audit_record
from accounts.models import User
from diagnosis import fhir, presentation
from diagnosis.models import (
    Analysis,
    AnalysisStatus,
    AnatomicSite,
    Lesion,
    Review,
)
from diagnosis.selectors import analysis_get, analysis_list, lesion_get, lesion_list, queue_position
from diagnosis.services import image_upload, lesion_create
from melanoma_portal.api_errors import error_body, parse_id
from patients.selectors import patient_get


def _status_url(request: Request, analysis: Analysis) -> str:
    return request.build_absolute_uri(reverse("api:analysis-detail", args=[analysis.pk]))


# --- Lesions -------------------------------------------------------------------------------


class LesionOutput(serializers.ModelSerializer):
    patient = serializers.IntegerField(source="patient_id", read_only=True)

    class Meta:
        model = Lesion
        fields = ("id", "patient", "anatomic_site", "label", "created_at")
        read_only_fields = fields


class LesionInput(serializers.Serializer):
    patient = serializers.IntegerField(min_value=1, help_text="The patient's id")
    anatomic_site = serializers.ChoiceField(choices=AnatomicSite.choices)
    label = serializers.CharField(max_length=100, allow_blank=True, required=False, default="")


class LesionFilter(serializers.Serializer):
    patient = serializers.IntegerField(min_value=1, required=False)


class ImageUploadInput(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True,  # an empty file gets the upload validation's own message
        help_text="A dermoscopic photo, JPEG or PNG; the type is read from the bytes.",
    )
    submission_token = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="Optional idempotency key: a retried request with the same token returns "
        "the first upload's analysis instead of analysing the photo twice.",
    )


class UploadAccepted(serializers.Serializer):
    analysis_id = serializers.IntegerField()
    image_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=AnalysisStatus.choices)
    status_url = serializers.URLField(help_text="Poll this until status is done or failed.")


class LesionViewSet(viewsets.GenericViewSet):
    """A patient's lesions: list (filter by ?patient=), create, retrieve, upload an image."""

    lookup_value_regex = r"[^/]+"  # checked by parse_id: bad ids get a JSON 404
    queryset = Lesion.objects.none()  # schema only; reads go through diagnosis.selectors
    serializer_class = LesionOutput

    @extend_schema(
        summary="List the clinic's lesions, optionally of one patient",
        parameters=[OpenApiParameter("patient", int, description="Only this patient's lesions")],
        responses=LesionOutput(many=True),
    )
    def list(self, request: Request) -> Response:
        query = LesionFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        lesions = lesion_list(user=request.user)
        patient_id = query.validated_data.get("patient")
        if patient_id is not None:
            patient = patient_get(user=request.user, patient_id=patient_id)
            lesions = lesions.filter(patient=patient)
        page = self.paginate_queryset(lesions)
        audit_record(
            action="lesion.list", request=request, patient_id=patient_id, count=len(page or [])
        )
        return self.get_paginated_response(LesionOutput(page, many=True).data)

    @extend_schema(summary="One lesion", responses=LesionOutput)
    def retrieve(self, request: Request, pk: str) -> Response:
        lesion = lesion_get(user=request.user, lesion_id=parse_id(pk, "lesion"))
        audit_record(action="lesion.view", request=request, obj=lesion)
        return Response(LesionOutput(lesion).data)

    @extend_schema(
        summary="Record a lesion of a patient", request=LesionInput, responses={201: LesionOutput}
    )
    def create(self, request: Request) -> Response:
        data = LesionInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        patient = patient_get(user=request.user, patient_id=fields.pop("patient"))
        lesion = lesion_create(actor=request.user, patient=patient, request=request, **fields)
        return Response(LesionOutput(lesion).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Upload a dermoscopic image of the lesion and queue its analysis",
        request={"multipart/form-data": ImageUploadInput},
        responses={202: UploadAccepted},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="images",
        parser_classes=[MultiPartParser, FormParser],
    )
    def images(self, request: Request, pk: str) -> Response:
        lesion = lesion_get(user=request.user, lesion_id=parse_id(pk, "lesion"))
        data = ImageUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        analysis = image_upload(
            actor=request.user,
            lesion=lesion,
            upload=data.validated_data["file"],
            submission_token=data.validated_data.get("submission_token"),
            request=request,
        )
        url = _status_url(request, analysis)
        body = UploadAccepted(
            {
                "analysis_id": analysis.pk,
                "image_id": analysis.image_id,
                "status": analysis.status,
                "status_url": url,
            }
        ).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


# --- Analyses ------------------------------------------------------------------------------


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
        return _status_url(self.context["request"], analysis)

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


# --- Reviews (read only: doctors write them on the portal's pages) ---------------------------


class ReviewOutput(serializers.ModelSerializer):
    analysis = serializers.IntegerField(source="analysis_id", read_only=True)
    supersedes = serializers.IntegerField(source="supersedes_id", read_only=True, allow_null=True)
    diagnosis_label = serializers.CharField(read_only=True)
    signed_by = serializers.CharField(source="signed_by_name", read_only=True)
    is_current = serializers.SerializerMethodField()

    class Meta:
        model = Review
        fields = (
            "id",
            "analysis",
            "version",
            "supersedes",
            "is_current",
            "agrees_with_ai",
            "diagnosis",
            "diagnosis_other",
            "diagnosis_label",
            "management",
            "follow_up_on",
            "notes",
            "amendment_reason",
            "signed_at",
            "signed_by",
        )
        read_only_fields = fields

    def get_is_current(self, review: Review) -> bool:
        """False once a later signed amendment supersedes this version."""
        return review.pk not in self.context.get("superseded", set())


class ReviewFilter(serializers.Serializer):
    analysis = serializers.IntegerField(min_value=1, required=False)
    patient = serializers.IntegerField(min_value=1, required=False)


def signed_reviews(*, user: User) -> QuerySet[Review]:
    """Signed reviews of the user's clinic's analyses. A draft is a doctor's work in progress,
    not a clinical statement, so the API never shows one."""
    return Review.objects.filter(
        analysis__in=analysis_list(user=user).values("pk"), signed_at__isnull=False
    ).order_by("-signed_at", "-id")


def _superseded(reviews: list[Review]) -> set[int]:
    ids = [review.pk for review in reviews]
    return set(
        Review.objects.filter(supersedes_id__in=ids, signed_at__isnull=False).values_list(
            "supersedes_id", flat=True
        )
    )


class ReviewViewSet(viewsets.GenericViewSet):
    """Doctors' signed reviews of analyses, every version, newest first."""

    lookup_value_regex = r"[^/]+"  # checked by parse_id: bad ids get a JSON 404
    queryset = Review.objects.none()  # schema only
    serializer_class = ReviewOutput

    @extend_schema(
        summary="List signed reviews, optionally of one analysis or patient",
        parameters=[
            OpenApiParameter("analysis", int, description="Only this analysis's reviews"),
            OpenApiParameter("patient", int, description="Only this patient's reviews"),
        ],
        responses=ReviewOutput(many=True),
    )
    def list(self, request: Request) -> Response:
        query = ReviewFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        reviews = signed_reviews(user=request.user)
        if "analysis" in query.validated_data:
            reviews = reviews.filter(analysis_id=query.validated_data["analysis"])
        if "patient" in query.validated_data:
            reviews = reviews.filter(
                analysis__image__lesion__patient_id=query.validated_data["patient"]
            )
        page = list(self.paginate_queryset(reviews) or [])
        audit_record(
            action="review.list",
            request=request,
            patient_id=query.validated_data.get("patient"),
            count=len(page),
        )
        context = {"superseded": _superseded(page)}
        return self.get_paginated_response(ReviewOutput(page, many=True, context=context).data)

    @extend_schema(summary="One signed review", responses=ReviewOutput)
    def retrieve(self, request: Request, pk: str) -> Response:
        review = signed_reviews(user=request.user).filter(pk=parse_id(pk, "review")).first()
        if review is None:
            raise exceptions.NotFound("No such review.")
        audit_record(action="review.view", request=request, obj=review)
        context = {"superseded": _superseded([review])}
        return Response(ReviewOutput(review, context=context).data)
