"""The Django admin as the portal uses it: site-wide for superusers, one clinic for its admins.

Who enters (PortalAdminSite.has_permission):
- a superuser: every clinic; clinical records and the audit trail stay read-only all the same,
  because every write of them goes through an audited service (STYLE.md), never a bare form;
- a clinic admin (role "admin", no `is_staff` needed): their own clinic only, read-only;
- other staff accounts (an auditor with `is_staff`): what their Django permissions allow.
Doctors and clinic staff do not enter. Whoever enters needs an authenticator code used in this
session (accounts.mfa.MFARequiredMiddleware asks for it).

Scoping lives in one mixin, ClinicScopedAdmin: the queryset every admin view starts from (lists,
change pages, list filters that read it, search, autocomplete, date hierarchy, actions) is
limited to the clinic, and so are the choices of every foreign key, so another clinic's record is
neither listed nor reachable by its id. Each view of patient data in the admin is on the audit
trail ("admin.list", "admin.view"), like every other access to it.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.audit import audit_record
from accounts.models import Role


def is_clinic_admin(user) -> bool:
    """An active clinic admin of a clinic, who is not a site-wide superuser."""
    return bool(
        user.is_authenticated
        and user.is_active
        and not user.is_superuser
        and user.clinic_id
        and user.role == Role.ADMIN
    )


def clinic_scoped(user) -> bool:
    """Whether what `user` sees in the admin is limited to their clinic: anyone who belongs to
    one, unless a site-wide superuser."""
    return bool(user.is_authenticated and not user.is_superuser and user.clinic_id)


class PortalAdminSite(admin.AdminSite):
    site_header = "Melanoma Portal administration"
    site_title = "Melanoma Portal administration"
    index_title = "Records and audit trail"
    site_url = "/"

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and (user.is_staff or is_clinic_admin(user)))

    def password_change(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        # One place changes a password: allauth's page (its rules, its audit, its e-mail).
        return redirect("account_change_password")


class ClinicScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose records belong to a clinic, found by `clinic_lookup` (a lookup path
    to the clinic's id, e.g. "lesion__patient__clinic_id").

    `read_only`: no add, change or delete for anyone (clinical records, the audit trail).
    `audited`: views are recorded on the audit trail (the records hold patient data).
    Clinic admins may view, never change, whatever the model.
    """

    clinic_lookup: str = "clinic_id"
    read_only = True
    audited = True

    # --- what is visible -------------------------------------------------------------------
    def get_queryset(self, request: HttpRequest):
        records = super().get_queryset(request)
        if clinic_scoped(request.user):
            return records.filter(**{self.clinic_lookup: request.user.clinic_id})
        return records

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        # A foreign key offers only what its own admin would show this user.
        related_admin = self.admin_site._registry.get(db_field.remote_field.model)
        if related_admin is not None and "queryset" not in kwargs:
            kwargs["queryset"] = related_admin.get_queryset(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs):
        related_admin = self.admin_site._registry.get(db_field.remote_field.model)
        if related_admin is not None and "queryset" not in kwargs:
            kwargs["queryset"] = related_admin.get_queryset(request)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    # --- who may do what -------------------------------------------------------------------
    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_clinic_admin(request.user) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_clinic_admin(request.user) or super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        if self.read_only or is_clinic_admin(request.user):
            return False
        return super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        if self.read_only or is_clinic_admin(request.user):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        if self.read_only or is_clinic_admin(request.user):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        if self.read_only or is_clinic_admin(request.user):
            actions.pop("delete_selected", None)
        return actions

    # --- the audit trail -------------------------------------------------------------------
    def changelist_view(self, request: HttpRequest, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if self.audited and changelist is not None and response.status_code == 200:
            audit_record(
                action="admin.list",
                request=request,
                model=self.model._meta.model_name,
                count=changelist.result_count,
                query=request.GET.urlencode()[:200],
            )
        return response

    def change_view(self, request: HttpRequest, object_id: str, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if self.audited and request.method == "GET" and response.status_code == 200:
            obj = self.get_object(request, unquote(object_id))
            if obj is not None:
                audit_record(action="admin.view", request=request, obj=obj)
        return response
