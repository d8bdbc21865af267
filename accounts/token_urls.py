"""URLs of the API-token page, mounted at /clinic/api-tokens/."""

from django.urls import path

from accounts import token_views

app_name = "api_tokens"

urlpatterns = [
    path("", token_views.api_token_page, name="list"),
    path("<int:user_id>/issue/", token_views.api_token_issue_view, name="issue"),
    path("<int:user_id>/revoke/", token_views.api_token_revoke_view, name="revoke"),
]
