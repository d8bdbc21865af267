"""JWT sign-in for API clients that act for a person: obtain, refresh (rotating), sign out.

The endpoints take no credentials of their own (no session, no token): what they check is in the
body, and accounts.services.jwt_tokens checks it. Anonymous requests count against the
caller's address at the anonymous rate, like every other unauthenticated API request.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services.jwt_tokens import (
    TokenRefused,
    jwt_issue,
    jwt_refresh,
    jwt_sign_out,
)
from melanoma_portal.api_errors import error_body


class TokenObtainInput(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})
    code = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="A current code from the account's authenticator app (or a recovery code); "
        "required when the account has an authenticator.",
    )


class RefreshInput(serializers.Serializer):
    refresh = serializers.CharField()


class TokenPairOutput(serializers.Serializer):
    access = serializers.CharField(help_text="Send as `Authorization: Bearer <access>`.")
    refresh = serializers.CharField(help_text="Exchange at /api/v1/auth/token/refresh/, once.")
    access_expires = serializers.DateTimeField()
    refresh_expires = serializers.DateTimeField()
    token_type = serializers.CharField()


def _refused(refusal: TokenRefused) -> Response:
    return Response(
        error_body(refusal.status, refusal.message, code=refusal.code), status=refusal.status
    )


class _TokenView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]


class TokenObtainView(_TokenView):
    @extend_schema(
        tags=["auth"],
        request=TokenObtainInput,
        responses={200: TokenPairOutput, 401: OpenApiResponse(description="Wrong credentials")},
        summary="Sign an app in: a JWT access token and refresh token",
    )
    def post(self, request: Request) -> Response:
        data = TokenObtainInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            pair = jwt_issue(request=request._request, **data.validated_data)
        except TokenRefused as refusal:
            return _refused(refusal)
        return Response(pair.as_dict())


class TokenRefreshView(_TokenView):
    @extend_schema(
        tags=["auth"],
        request=RefreshInput,
        responses={200: TokenPairOutput},
        summary="A new access token and a new refresh token (the old one is used up)",
    )
    def post(self, request: Request) -> Response:
        data = RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            pair = jwt_refresh(refresh=data.validated_data["refresh"], request=request._request)
        except TokenRefused as refusal:
            return _refused(refusal)
        return Response(pair.as_dict())


class TokenSignOutView(_TokenView):
    @extend_schema(
        tags=["auth"],
        request=RefreshInput,
        responses={204: None},
        summary="Sign the app out: its refresh and access tokens stop working",
    )
    def post(self, request: Request) -> Response:
        data = RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            jwt_sign_out(refresh=data.validated_data["refresh"], request=request._request)
        except TokenRefused as refusal:
            return _refused(refusal)
        return Response(status=status.HTTP_204_NO_CONTENT)
