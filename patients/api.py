"""REST API for patients: the same selectors, services, clinic scoping and audit as the pages."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.audit import audit_record
from melanoma_portal.api_errors import parse_id
from patients.models import FitzpatrickType, Patient, Sex
from patients.selectors import patient_get, patient_list
from patients.services import PATIENT_FIELDS, patient_create, patient_update


class PatientOutput(serializers.ModelSerializer):
    # Blank when unknown: a plain string, so the schema does not promise a valid address.
    email = serializers.CharField(read_only=True)

    class Meta:
        model = Patient
        fields = ("id", *PATIENT_FIELDS, "created_at", "updated_at")
        read_only_fields = fields


class PatientInput(serializers.Serializer):
    """What a client may set; the clinic and the creator come from the token's user. The
    rules on the values (a date of birth in the past, say) are the model's, checked by the
    service."""

    mrn = serializers.CharField(max_length=64, help_text="Medical record number, unique per clinic")
    first_name = serializers.CharField(max_length=100)
    last_name = serializers.CharField(max_length=100)
    date_of_birth = serializers.DateField()
    sex = serializers.ChoiceField(choices=Sex.choices)
    fitzpatrick_skin_type = serializers.ChoiceField(
        choices=FitzpatrickType.choices, allow_null=True, required=False
    )
    phone = serializers.CharField(max_length=50, allow_blank=True, required=False)
    email = serializers.EmailField(allow_blank=True, required=False)
    address = serializers.CharField(allow_blank=True, required=False)


class PatientSearch(serializers.Serializer):
    search = serializers.CharField(required=False, allow_blank=True, max_length=200)


@extend_schema_view(
    list=extend_schema(
        summary="List or search the clinic's patients",
        parameters=[
            OpenApiParameter("search", str, description="Words matched against name and MRN")
        ],
        responses=PatientOutput(many=True),
    ),
    retrieve=extend_schema(summary="One patient", responses=PatientOutput),
    create=extend_schema(
        summary="Register a patient", request=PatientInput, responses={201: PatientOutput}
    ),
    update=extend_schema(
        summary="Replace a patient's details", request=PatientInput, responses=PatientOutput
    ),
    partial_update=extend_schema(
        summary="Change some of a patient's details",
        request=PatientInput(partial=True),
        responses=PatientOutput,
    ),
)
class PatientViewSet(viewsets.GenericViewSet):
    """Patients of the caller's clinic; another clinic's patient is a 404, as if absent."""

    lookup_value_regex = r"[^/]+"  # checked by parse_id: bad ids get a JSON 404
    # For the schema only (types of the id); every read goes through patients.selectors.
    queryset = Patient.objects.none()
    serializer_class = PatientOutput

    def list(self, request: Request) -> Response:
        query = PatientSearch(data=request.query_params)
        query.is_valid(raise_exception=True)
        search = query.validated_data.get("search", "")
        patients = patient_list(user=request.user, search=search)
        page = self.paginate_queryset(patients)
        audit_record(action="patient.list", request=request, search=search, count=len(page or []))
        return self.get_paginated_response(PatientOutput(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        patient = patient_get(user=request.user, patient_id=parse_id(pk, "patient"))
        audit_record(action="patient.view", request=request, obj=patient)
        return Response(PatientOutput(patient).data)

    def create(self, request: Request) -> Response:
        data = PatientInput(data=request.data)
        data.is_valid(raise_exception=True)
        patient = patient_create(actor=request.user, request=request, **data.validated_data)
        return Response(PatientOutput(patient).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=False)

    def partial_update(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=True)

    def _update(self, request: Request, pk: str, *, partial: bool) -> Response:
        patient = patient_get(user=request.user, patient_id=parse_id(pk, "patient"))
        data = PatientInput(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        patient = patient_update(
            actor=request.user, patient=patient, request=request, **data.validated_data
        )
        return Response(PatientOutput(patient).data)
