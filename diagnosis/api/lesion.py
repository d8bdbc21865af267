"""REST API for lesions, their timeline, and the upload of their dermoscopic images. The
endpoints call the same selectors and services as the pages (one way to upload an image)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.audit import audit_record
from diagnosis import presentation
from diagnosis.api.analysis import status_url, triage_output
from diagnosis.body_map import REGIONS
from diagnosis.models import (
    AnalysisStatus,
    AnatomicSite,
    Laterality,
    Lesion,
)
from diagnosis.models.lesion import SIZE_MAX_MM, SIZE_MIN_MM
from diagnosis.selectors.lesion import lesion_get, lesion_list, lesion_timeline
from diagnosis.services.image import DuplicateImage, image_upload
from diagnosis.services.lesion import lesion_create
from melanoma_portal.api_errors import error_body, parse_id
from melanoma_portal.throttling import UploadRateThrottle
from patients.selectors import patient_get


class LesionOutput(serializers.ModelSerializer):
    patient = serializers.IntegerField(source="patient_id", read_only=True)
    laterality = serializers.ChoiceField(
        choices=Laterality.choices,
        allow_blank=True,
        read_only=True,
        help_text="The patient's side; empty when not recorded.",
    )

    class Meta:
        model = Lesion
        fields = (
            "id",
            "patient",
            "anatomic_site",
            "laterality",
            "size_mm",
            "body_map_region",
            "label",
            "created_at",
        )
        read_only_fields = fields


class LesionInput(serializers.Serializer):
    patient = serializers.IntegerField(min_value=1, help_text="The patient's id")
    anatomic_site = serializers.ChoiceField(choices=AnatomicSite.choices)
    laterality = serializers.ChoiceField(
        choices=Laterality.choices, allow_blank=True, required=False, default=""
    )
    size_mm = serializers.DecimalField(
        max_digits=4,
        decimal_places=1,
        min_value=SIZE_MIN_MM,
        max_value=SIZE_MAX_MM,
        required=False,
        allow_null=True,
        default=None,
        help_text="Largest diameter in millimetres.",
    )
    body_map_region = serializers.ChoiceField(
        choices=sorted(REGIONS),
        allow_blank=True,
        required=False,
        default="",
        help_text="The body map region the site was chosen on; it must lie on anatomic_site.",
    )
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
    allow_duplicate = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Store the image although the clinic already holds the same file or the "
        "same picture (answered 409 otherwise).",
    )


class UploadAccepted(serializers.Serializer):
    analysis_id = serializers.IntegerField()
    image_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=AnalysisStatus.choices)
    status_url = serializers.URLField(help_text="Poll this until status is done or failed.")


class TimelineImage(serializers.Serializer):
    image = serializers.IntegerField()
    uploaded_at = serializers.DateTimeField()
    visit_date = serializers.DateField(help_text="The visit (the clinic's local day).")
    analysis = serializers.IntegerField(allow_null=True)
    status = serializers.CharField(allow_null=True, help_text="The analysis's status.")
    melanoma_probability = serializers.FloatField(allow_null=True)
    top_class = serializers.CharField(allow_null=True)
    triage = serializers.JSONField(
        allow_null=True,
        help_text="The result's triage as the analysis endpoint gives it; null without one.",
    )
    level = serializers.CharField(
        help_text="urgent, soon or routine (a result from before triage by its risk tier), "
        "empty without a result."
    )
    review_state = serializers.CharField(help_text="The review state in words.")
    signed_review = serializers.IntegerField(allow_null=True)
    covered_by_review = serializers.IntegerField(
        allow_null=True,
        help_text="The signed review of the visit's latest image that covers this one.",
    )


class TriageChangeOutput(serializers.Serializer):
    before = serializers.CharField()
    after = serializers.CharField()
    before_on = serializers.DateField()
    after_on = serializers.DateField()
    worse = serializers.BooleanField()
    text = serializers.CharField()


class LesionTimelineOutput(serializers.Serializer):
    lesion = LesionOutput()
    images = TimelineImage(many=True, help_text="Newest first.")
    changed_since_last_visit = TriageChangeOutput(allow_null=True)
    histopathology = serializers.JSONField(
        allow_null=True, help_text="diagnosis, diagnosis_label, reported_on, lab_reference"
    )
    disclaimer = serializers.CharField()


def _timeline_image(entry) -> dict:
    analysis = entry.analysis
    done = analysis is not None and analysis.status == AnalysisStatus.DONE
    return {
        "image": entry.image.pk,
        "uploaded_at": entry.image.uploaded_at,
        "visit_date": entry.visit_date,
        "analysis": analysis.pk if analysis else None,
        "status": analysis.status if analysis else None,
        "melanoma_probability": analysis.melanoma_probability if done else None,
        "top_class": analysis.top_class if done else None,
        "triage": triage_output(analysis) if done else None,
        "level": entry.level,
        "review_state": entry.review_state,
        "signed_review": entry.signed_review.pk if entry.signed_review else None,
        "covered_by_review": entry.covering_review.pk if entry.covering_review else None,
    }


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
        summary="The lesion's timeline: every image, newest first, with its result and review "
        "state, whether the triage changed since the last visit, and the histology result",
        responses=LesionTimelineOutput,
    )
    @action(detail=True, methods=["get"], url_path="timeline")
    def timeline(self, request: Request, pk: str) -> Response:
        timeline = lesion_timeline(user=request.user, lesion_id=parse_id(pk, "lesion"))
        audit_record(
            action="lesion.view",
            request=request,
            obj=timeline.lesion,
            images=len(timeline.entries),
        )
        change = timeline.change
        histology = timeline.histopathology
        body = LesionTimelineOutput(
            {
                "lesion": timeline.lesion,
                "images": [_timeline_image(entry) for entry in timeline.entries],
                "changed_since_last_visit": None
                if change is None
                else {
                    "before": change.before,
                    "after": change.after,
                    "before_on": change.before_on,
                    "after_on": change.after_on,
                    "worse": change.worse,
                    "text": change.text,
                },
                "histopathology": None
                if histology is None
                else {
                    "diagnosis": histology.diagnosis,
                    "diagnosis_label": histology.diagnosis_label,
                    "reported_on": histology.reported_on.isoformat(),
                    "lab_reference": histology.lab_reference,
                },
                "disclaimer": presentation.DISCLAIMER,
            }
        ).data
        return Response(body)

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
        responses={
            202: UploadAccepted,
            409: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="The clinic already holds this file or picture (on this lesion, "
                "another lesion of the patient, or another patient): nothing was stored. "
                "`duplicates` says where; allow_duplicate=true stores it anyway.",
            ),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="images",
        parser_classes=[MultiPartParser, FormParser],
        throttle_classes=[UploadRateThrottle],  # the `upload` rate, in place of `user`
    )
    def images(self, request: Request, pk: str) -> Response:
        lesion = lesion_get(user=request.user, lesion_id=parse_id(pk, "lesion"))
        data = ImageUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            analysis = image_upload(
                actor=request.user,
                lesion=lesion,
                upload=data.validated_data["file"],
                submission_token=data.validated_data.get("submission_token"),
                allow_duplicate=data.validated_data["allow_duplicate"],
                request=request,
            )
        except DuplicateImage as duplicate:
            matches = duplicate.matches
            audit_record(
                action="image.duplicate_warning",
                request=request,
                obj=lesion,
                matches=[match.image_id for match in matches],
            )
            body = error_body(
                409,
                f"{duplicate} Nothing was stored; send allow_duplicate=true to store it anyway.",
                code="duplicate",
            )
            body["duplicates"] = [
                {
                    "image": match.image_id,
                    "analysis": match.analysis_id if match.where != "other" else None,
                    "where": match.where,
                    "exact": match.exact,
                    "uploaded_at": match.uploaded_at.isoformat(),
                    "message": match.message,
                }
                for match in matches
            ]
            return Response(body, status=status.HTTP_409_CONFLICT)
        url = status_url(request, analysis)
        body = UploadAccepted(
            {
                "analysis_id": analysis.pk,
                "image_id": analysis.image_id,
                "status": analysis.status,
                "status_url": url,
            }
        ).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})
