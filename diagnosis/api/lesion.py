"""REST API for lesions and the upload of their dermoscopic images. The endpoints call the same
selectors and services as the pages (one way to upload an image)."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.audit import audit_record
from diagnosis.api.analysis import status_url
from diagnosis.models import (
    AnalysisStatus,
    AnatomicSite,
    Lesion,
)
from diagnosis.selectors.lesion import lesion_get, lesion_list
from diagnosis.services.image import image_upload
from diagnosis.services.lesion import lesion_create
from melanoma_portal.api_errors import parse_id
from patients.selectors import patient_get


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
