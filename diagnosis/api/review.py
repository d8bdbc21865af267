"""REST API for doctors' signed reviews (read only: doctors write them on the portal's pages)."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
)
from rest_framework import exceptions, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.audit import audit_record
from diagnosis.models import (
    Review,
)
from diagnosis.selectors.review import signed_reviews
from melanoma_portal.api_errors import parse_id


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
            "referral_to",
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
            # Named only when the answer holds their reviews (see the analyses list).
            patient_id=query.validated_data.get("patient") if page else None,
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
