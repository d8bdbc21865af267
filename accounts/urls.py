"""Every page of the accounts app, mounted once at /clinic/: the clinic's accounts in the
`accounts` namespace, their API tokens in `api_tokens` (/clinic/api-tokens/)."""

from django.urls import include, path

from accounts.views import clinic, tokens, users

users_urlpatterns = [
    path("users/", users.user_list, name="user_list"),
    path("users/new/", users.user_create, name="user_create"),
    path("users/<int:user_id>/", users.user_edit, name="user_edit"),
    path("users/<int:user_id>/email/", users.user_email, name="user_email"),
    path("users/<int:user_id>/deactivate/", users.user_deactivate, name="user_deactivate"),
    path("users/<int:user_id>/reactivate/", users.user_reactivate, name="user_reactivate"),
    path("users/<int:user_id>/resend/", users.user_resend, name="user_resend"),
    path("referral-policy/", clinic.referral_policy, name="referral_policy"),
    path("sign-on/", clinic.sign_on, name="sign_on"),
    path("users/<int:user_id>/unlock/", users.user_unlock, name="user_unlock"),
]

token_urlpatterns = [
    path("", tokens.api_token_page, name="list"),
    path("<int:user_id>/issue/", tokens.api_token_issue_view, name="issue"),
    path("<int:user_id>/revoke/", tokens.api_token_revoke_view, name="revoke"),
]

urlpatterns = [
    path("api-tokens/", include((token_urlpatterns, "api_tokens"))),
    path("", include((users_urlpatterns, "accounts"))),
]
