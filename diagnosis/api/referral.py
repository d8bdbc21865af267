"""REST API for referrals: list (open, overdue, closed), one referral, and closing it, through
the same selectors and services as the referrals page."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.audit import audit_record
from accounts.models import Role
from accounts.permissions import require_role
from diagnosis.models import Referral, ReferralStatus, ReferralUrgency
from diagnosis.selectors.referral import REFERRAL_FILTERS, referral_get, referral_list
from diagnosis.services.referral import referral_close
from melanoma_portal.api_errors import parse_id


class HistopathologyBrief(serializers.Serializer):
    id = serializers.IntegerField()
    diagnosis = serializers.CharField()
    diagnosis_label = serializers.CharField()
    reported_on = serializers.DateField()
    lab_reference = serializers.CharField()


class ReferralOutput(serializers.Serializer):
    id = serializers.IntegerField()
    patient = serializers.IntegerField(source="lesion.patient_id")
    lesion = serializers.IntegerField(source="lesion_id")
    analysis = serializers.IntegerField(source="analysis_id")
    review = serializers.IntegerField(
        source="review_id", help_text="The signed review version whose decision opened it."
    )
    destination = serializers.CharField(help_text="Where the patient is referred.")
    urgency = serializers.ChoiceField(choices=ReferralUrgency.choices)
    due_on = serializers.DateField(help_text="Due by this date, by the clinic's policy.")
    status = serializers.ChoiceField(choices=ReferralStatus.choices)
    is_overdue = serializers.BooleanField(help_text="Open and past its due date, today.")
    outcome = serializers.CharField()
    histopathology = HistopathologyBrief(allow_null=True)
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    closed_by = serializers.CharField(source="closed_by_name")


class ReferralFilter(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=list(REFERRAL_FILTERS),
        required=False,
        error_messages={"invalid_choice": "Use status=open, overdue or closed."},
    )
    patient = serializers.IntegerField(min_value=1, required=False)


class ReferralCloseInput(serializers.Serializer):
    outcome = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="What came of the referral. Required unless with_histopathology is true.",
    )
    with_histopathology = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Attach the lesion's recorded histology result.",
    )


class ReferralViewSet(viewsets.GenericViewSet):
    """Referrals opened by doctors' signed decisions to refer, soonest due first."""

    lookup_value_regex = r"[^/]+"  # checked by parse_id: bad ids get a JSON 404
    queryset = Referral.objects.none()  # schema only; reads go through diagnosis.selectors
    serializer_class = ReferralOutput

    @extend_schema(
        summary="List the clinic's referrals, soonest due first",
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=list(REFERRAL_FILTERS),
                description="open (including overdue), overdue (open past the due date), "
                "or closed; all when absent",
            ),
            OpenApiParameter("patient", int, description="Only this patient's referrals"),
        ],
        responses=ReferralOutput(many=True),
    )
    def list(self, request: Request) -> Response:
        query = ReferralFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = query.validated_data
        referrals = referral_list(user=request.user, status=filters.get("status"))
        if "patient" in filters:
            referrals = referrals.filter(lesion__patient_id=filters["patient"])
        page = list(self.paginate_queryset(referrals) or [])
        audit_record(
            action="referral.list",
            request=request,
            status=filters.get("status", "all"),
            patient_id=filters.get("patient"),
            count=len(page),
        )
        return self.get_paginated_response(ReferralOutput(page, many=True).data)

    @extend_schema(summary="One referral", responses=ReferralOutput)
    def retrieve(self, request: Request, pk: str) -> Response:
        referral = referral_get(user=request.user, referral_id=parse_id(pk, "referral"))
        audit_record(action="referral.view", request=request, obj=referral)
        return Response(ReferralOutput(referral).data)

    @extend_schema(
        summary="Close a referral with its outcome or the lesion's histology result (doctors)",
        request=ReferralCloseInput,
        responses={
            200: ReferralOutput,
            409: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="The referral is closed already (by whom and when is in the "
                "message); nothing was changed.",
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path="close")
    def close(self, request: Request, pk: str) -> Response:
        referral = referral_get(user=request.user, referral_id=parse_id(pk, "referral"))
        # Who may close is answered before what was sent: a staff member learns "doctors only",
        # not a list of missing fields.
        require_role(request.user, Role.DOCTOR)
        data = ReferralCloseInput(data=request.data)
        data.is_valid(raise_exception=True)
        referral_close(
            actor=request.user, referral=referral, request=request, **data.validated_data
        )
        closed = referral_get(user=request.user, referral_id=referral.pk)
        return Response(ReferralOutput(closed).data)
