"""The Django admin for clinics, users and the audit trail.

The audit trail is read-only here for everyone, superusers included: no add, change or delete.
Auditors filter it by user, patient, action and date and export what they see as CSV. A clinic
admin sees their own clinic, its accounts and its audit trail, read-only
(accounts.admin_site.ClinicScopedAdmin); accounts are managed on the portal's Users page.
"""

from __future__ import annotations

import csv

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from accounts.admin_site import ClinicScopedAdmin, clinic_scoped, is_clinic_admin
from accounts.audit import audit_record
from accounts.models import AuditEvent, Clinic, ClinicSignOn, Role, User
from accounts.selectors.users import email_in_use
from accounts.services.sign_on import clinic_local_passwords_set, clinic_sign_on_save
from accounts.services.users import EMAIL_UNAVAILABLE, user_change_email, user_unlock

CSV_COLUMNS = (
    "at",
    "user_email",
    "role",
    "clinic_id",
    "action",
    "object_type",
    "object_id",
    "patient_id",
    "ip_address",
    "user_agent",
    "detail",
)


@admin.register(Clinic)
class ClinicAdmin(ClinicScopedAdmin):
    clinic_lookup = "pk"
    read_only = False  # superusers only: a clinic admin views (their policy is a portal page)
    audited = False  # no patient data
    list_display = ("name", "phone", "image_retention_days", "keep_thumbnails", "created_at")
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("name", "address", "phone")}),
        ("Retention", {"fields": ("image_retention_days", "keep_thumbnails")}),
    )


class AdminUserChangeForm(UserChangeForm):
    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if "email" in self.changed_data and email_in_use(email, except_user_id=self.instance.pk):
            raise ValidationError(EMAIL_UNAVAILABLE)
        return email


@admin.register(User)
class UserAdmin(ClinicScopedAdmin, DjangoUserAdmin):
    read_only = False  # superusers only: a clinic admin manages accounts under Users
    audited = False  # no patient data; changes of privileges are audited by accounts.signals
    form = AdminUserChangeForm
    ordering = ("email",)
    list_display = ("email", "full_name", "clinic", "role", "is_active", "is_staff")
    list_filter = (
        ("clinic", admin.RelatedOnlyFieldListFilter),
        "role",
        "is_active",
        "is_staff",
        "is_superuser",
    )
    search_fields = ("email", "full_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Person", {"fields": ("full_name",)}),
        ("Clinic", {"fields": ("clinic", "role")}),
        (
            "Privileges",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "full_name", "clinic", "role", "password1", "password2"),
            },
        ),
    )

    actions = ["unlock"]

    def get_fieldsets(self, request: HttpRequest, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not is_clinic_admin(request.user):
            return fieldsets
        # A clinic admin sees who works here and in which role; password hashes and Django's
        # own permission flags are none of their business.
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "password"]})
            for name, options in fieldsets
            if name != "Privileges"
        ]

    def save_model(self, request: HttpRequest, obj: User, form, change: bool) -> None:
        # accounts.signals records role and privilege changes with the admin who made them.
        obj._audit_request = request
        new_email = None
        if change and form is not None and "email" in form.changed_data:
            # A new address goes through the one service that changes it (audited, the old
            # address told), after the rest of the form is saved.
            new_email, obj.email = obj.email, form.initial["email"]
        super().save_model(request, obj, form, change)
        if new_email is not None:
            user_change_email(actor=request.user, user=obj, email=new_email, request=request)

    @admin.action(description="Unlock sign-in after failed log-ins", permissions=["change"])
    def unlock(self, request: HttpRequest, queryset) -> None:
        for account in queryset:
            user_unlock(actor=request.user, user=account, request=request)
        self.message_user(
            request, f"{queryset.count()} account(s) can try to sign in again.", messages.SUCCESS
        )


class EventIdFilter(admin.SimpleListFilter):
    """Filter the trail by the id in one of its columns (`column`); anything but digits in
    the URL filters nothing."""

    column = ""

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(**{self.column: int(value)})
        return queryset


class PatientIdFilter(EventIdFilter):
    """Filter by a patient's id: typed into the URL (?patient=123) or picked from the
    patients that appear in the trail (the patient record itself may have been erased)."""

    title = "patient"
    parameter_name = "patient"
    column = "patient_id"

    def lookups(self, request, model_admin):
        ids = (
            model_admin.get_queryset(request)
            .exclude(patient_id=None)
            .order_by("-patient_id")
            .values_list("patient_id", flat=True)
            .distinct()[:50]
        )
        return [(str(pk), f"Patient {pk}") for pk in ids]


class RoleFilter(admin.SimpleListFilter):
    """The roles are a fixed list: offered without reading the trail (a DISTINCT over a
    clinic's whole trail was a fifth of the page's time at 300,000 events)."""

    title = "role"
    parameter_name = "role"

    def lookups(self, request, model_admin):
        return Role.choices

    def queryset(self, request, queryset):
        return queryset.filter(role=self.value()) if self.value() else queryset


class UserFilter(EventIdFilter):
    """Filter by the person who acted: the accounts the viewer may see (a clinic admin, their
    clinic's), read from the accounts table rather than from every event of the trail."""

    title = "user"
    parameter_name = "user__id__exact"
    column = "user_id"

    def lookups(self, request, model_admin):
        users = User.objects.order_by("email")
        if clinic_scoped(request.user):
            users = users.filter(clinic_id=request.user.clinic_id)
        return [(str(user.pk), str(user)) for user in users]


class ClinicFilter(EventIdFilter):
    """Filter by clinic: the clinics the viewer may see, from the clinics table."""

    title = "clinic"
    parameter_name = "clinic__id__exact"
    column = "clinic_id"

    def lookups(self, request, model_admin):
        clinics = Clinic.objects.order_by("name")
        if clinic_scoped(request.user):
            clinics = clinics.filter(pk=request.user.clinic_id)
        return [(str(clinic.pk), str(clinic)) for clinic in clinics]


class ActionFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        events = model_admin.get_queryset(request)
        actions = events.order_by("action").values_list("action", flat=True)
        return [(a, a) for a in actions.distinct()]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ClinicScopedAdmin):
    # Scoped to the events of people of the clinic; viewing the trail names no patient, and
    # its export is itself audited.
    audited = False
    list_display = (
        "at",
        "user_email",
        "role",
        "clinic",
        "action",
        "object_type",
        "object_id",
        "patient_id",
        "ip_address",
    )
    list_filter = (
        ("at", admin.DateFieldListFilter),
        ActionFilter,
        UserFilter,
        PatientIdFilter,
        RoleFilter,
        ClinicFilter,
    )
    search_fields = ("user_email", "action", "object_id", "ip_address")
    date_hierarchy = "at"
    list_select_related = ("clinic",)
    # Drawing a row costs about a millisecond of Python; a hundred of them were most of the
    # page's time once the queries were indexed (bench/pages.py).
    list_per_page = 50
    actions = ["export_csv"]
    readonly_fields = [field.name for field in AuditEvent._meta.fields]

    @admin.action(description="Export selected events as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset):
        return audit_csv_response(request, queryset)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        # ?export=csv downloads everything the current filters select, not only a page of it.
        if request.GET.get("export") == "csv" and self.has_view_permission(request):
            params = request.GET.copy()
            del params["export"]
            request.GET = params
            changelist = self.get_changelist_instance(request)
            return audit_csv_response(request, changelist.get_queryset(request))
        return super().changelist_view(request, extra_context)


class _Echo:
    def write(self, value: str) -> str:
        return value


def audit_csv_response(request: HttpRequest, queryset) -> StreamingHttpResponse:
    """Stream audit events as CSV; the export is itself an audited action."""
    audit_record(action="audit.export", request=request, rows=queryset.count())
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for event in queryset.order_by("at", "id").iterator(chunk_size=2000):
            values = []
            for column in CSV_COLUMNS:
                value = getattr(event, column)
                if column == "at":
                    value = value.isoformat()
                values.append(_csv_safe("" if value is None else str(value)))
            yield writer.writerow(values)

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


def _csv_safe(value: str) -> str:
    """A user agent or e-mail starting with = + - @ would run as a formula in a spreadsheet."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


class ClinicSignOnAdminForm(forms.ModelForm):
    """The same fields as the clinic admin's page; the secret is typed, never shown."""

    issuer = forms.URLField(max_length=300, assume_scheme="https")
    client_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted. Leave empty to keep the one stored.",
    )

    class Meta:
        model = ClinicSignOn
        fields = (
            "clinic",
            "enabled",
            "display_name",
            "issuer",
            "client_id",
            "allowed_email_domains",
            "create_unknown_as_staff",
            "provider_enforces_mfa",
            "role_claim",
            "role_claim_values",
        )


@admin.register(ClinicSignOn)
class ClinicSignOnAdmin(admin.ModelAdmin):
    """A superuser sets any clinic's hospital sign-in here, through the same audited service as
    the clinic admin's page (accounts.services.sign_on); switching local passwords back on
    repairs a clinic whose provider broke."""

    form = ClinicSignOnAdminForm
    list_display = ("clinic", "display_name", "enabled", "local_passwords_disabled", "issuer")
    readonly_fields = ("local_passwords_disabled", "first_sign_in_at", "updated_at")
    actions = ["allow_local_passwords"]

    def save_model(self, request: HttpRequest, obj: ClinicSignOn, form, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in ClinicSignOnAdminForm.Meta.fields}
        clinic = data.pop("clinic")
        data["client_secret"] = form.cleaned_data["client_secret"] or None
        saved = clinic_sign_on_save(actor=request.user, clinic=clinic, request=request, **data)
        obj.pk = saved.pk

    @admin.action(description="Allow local passwords again")
    def allow_local_passwords(self, request: HttpRequest, queryset) -> None:
        for sign_on in queryset.select_related("clinic"):
            clinic_local_passwords_set(
                actor=request.user, clinic=sign_on.clinic, allowed=True, request=request
            )
        self.message_user(request, "Local passwords are allowed again.", messages.SUCCESS)
