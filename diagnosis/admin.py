"""The diagnosis app in the Django admin.

Lesions, images, analyses, reviews, histology results and referrals, for auditing diagnoses:
read-only for everyone, scoped to the viewer's clinic, every view on the audit trail
(accounts.admin_site.ClinicScopedAdmin). Each record links to its page in the portal, where the
work is done through the audited services. Image files are never shown here: the portal's image
view checks the clinic and records the access.

The model registry, for superusers: every version with its card, its shipped and local figures,
the promotion gate's verdict now, its history and how it compares in shadow across all clinics;
and the changes (promote, rollback, shadow, retire, evaluate), each through the same audited
service the management commands call. Its pages are read-only: a version's files and figures
are what was registered, and its status changes only through the form, which asks for a reason
and shows the gate's verdict first.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.admin_site import ClinicScopedAdmin
from diagnosis import services
from diagnosis.models import (
    Analysis,
    DermoscopicImage,
    Histopathology,
    Lesion,
    ModelStatus,
    ModelVersion,
    Referral,
    Review,
)
from diagnosis.selectors.model_version import promotion_gate, shadow_comparison_all_clinics

FILE_FIELDS = ("file", "thumbnail", "heatmap_top", "heatmap_melanoma")


def _portal_link(url: str, text: str = "Open in the portal") -> str:
    return format_html('<a href="{}">{}</a>', url, text)


@admin.register(Lesion)
class LesionAdmin(ClinicScopedAdmin):
    clinic_lookup = "patient__clinic_id"
    list_display = ("id", "patient", "anatomic_site", "label", "created_at")
    list_filter = ("anatomic_site",)
    search_fields = ("patient__mrn", "patient__last_name", "label")
    list_select_related = ("patient",)
    autocomplete_fields = ("patient",)
    exclude = ("created_by",)
    readonly_fields = ("portal", "created_at")

    @admin.display(description="Portal")
    def portal(self, lesion: Lesion) -> str:
        return _portal_link(reverse("patients:detail", args=[lesion.patient_id]))


@admin.register(DermoscopicImage)
class DermoscopicImageAdmin(ClinicScopedAdmin):
    clinic_lookup = "lesion__patient__clinic_id"
    list_display = ("id", "lesion", "content_type", "width", "height", "uploaded_at")
    list_select_related = ("lesion",)
    search_fields = ("lesion__patient__mrn", "original_filename")
    exclude = (*FILE_FIELDS, "uploaded_by", "submission_token")
    readonly_fields = ("uploaded_at", "original_deleted_at")


@admin.register(Analysis)
class AnalysisAdmin(ClinicScopedAdmin):
    clinic_lookup = "clinic_id"
    list_display = ("id", "status", "top_class", "risk_tier", "model_version", "queued_at")
    list_filter = ("status", "risk_tier", "top_class", "model_version")
    search_fields = ("image__lesion__patient__mrn",)
    date_hierarchy = "queued_at"
    exclude = FILE_FIELDS
    readonly_fields = ("portal", "queued_at")

    @admin.display(description="Portal")
    def portal(self, analysis: Analysis) -> str:
        return _portal_link(reverse("diagnosis:analysis", args=[analysis.pk]))


@admin.register(Review)
class ReviewAdmin(ClinicScopedAdmin):
    clinic_lookup = "analysis__clinic_id"
    list_display = (
        "id",
        "analysis",
        "version",
        "agrees_with_ai",
        "diagnosis",
        "management",
        "signed_by_name",
        "signed_at",
    )
    list_filter = (
        "agrees_with_ai",
        "diagnosis",
        "management",
        ("signed_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("analysis__image__lesion__patient__mrn", "signed_by_name")
    date_hierarchy = "created_at"
    exclude = ("author", "signed_by")
    readonly_fields = ("portal", "created_at", "updated_at")

    @admin.display(description="Portal")
    def portal(self, review: Review) -> str:
        return _portal_link(reverse("diagnosis:analysis", args=[review.analysis_id]))


@admin.register(Histopathology)
class HistopathologyAdmin(ClinicScopedAdmin):
    clinic_lookup = "lesion__patient__clinic_id"
    list_display = ("id", "lesion", "diagnosis", "reported_on", "lab_reference")
    list_filter = ("diagnosis",)
    search_fields = ("lesion__patient__mrn", "lab_reference")
    list_select_related = ("lesion",)
    exclude = ("recorded_by",)
    readonly_fields = ("recorded_at", "updated_at")


@admin.register(Referral)
class ReferralAdmin(ClinicScopedAdmin):
    clinic_lookup = "lesion__patient__clinic_id"
    list_display = ("id", "destination", "urgency", "due_on", "status", "closed_at")
    list_filter = ("status", "urgency")
    search_fields = ("lesion__patient__mrn", "destination")
    date_hierarchy = "due_on"
    exclude = ("created_by", "closed_by")
    readonly_fields = ("portal", "created_at", "closed_at")

    @admin.display(description="Portal")
    def portal(self, referral: Referral) -> str:
        return _portal_link(reverse("diagnosis:referral_detail", args=[referral.pk]))


FIGURES = (
    ("balanced_accuracy", "Balanced accuracy"),
    ("melanoma_auc", "Melanoma AUC"),
    ("melanoma_sensitivity", "Melanoma sensitivity at the triage boundary"),
    ("benign_specificity", "Benign lesions left routine (specificity at the boundary)"),
)


def _figure(figures: dict | None, name: str) -> str:
    figure = (figures or {}).get(name) or {}
    if figure.get("value") is None:
        return "-"
    text = f"{100 * figure['value']:.1f}%"
    if figure.get("ci95"):
        text += f" ({100 * figure['ci95'][0]:.1f}-{100 * figure['ci95'][1]:.1f})"
    if figure.get("count"):
        text += f" [{figure['count'][0]} of {figure['count'][1]}]"
    return text


def figures_table(columns: list[tuple[str, dict | None]]) -> str:
    """Versions side by side, one row per figure: value (95% interval) [count]."""
    head = format_html_join("", "<th>{}</th>", ((title,) for title, _ in columns))
    rows = format_html_join(
        "",
        "<tr><th>{}</th>{}</tr>",
        (
            (
                label,
                format_html_join(
                    "", "<td>{}</td>", ((_figure(figs, name),) for _, figs in columns)
                ),
            )
            for name, label in FIGURES
        ),
    )
    return format_html("<table><thead><tr><th></th>{}</tr></thead>{}</table>", head, rows)


class StatusChangeForm(forms.Form):
    CHANGES = (
        ("promote", "Promote to active (through the gate)"),
        ("shadow", "Run in shadow"),
        ("candidate", "Take out of shadow (candidate)"),
        ("retired", "Retire"),
        ("rollback", "Roll back: serve again the version the active one replaced"),
    )
    change = forms.ChoiceField(choices=CHANGES, widget=forms.RadioSelect)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Kept with the change and on the audit trail.",
    )


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "version",
        "status",
        "architecture",
        "runtime",
        "registered_at",
        "status_changed_at",
        "status_changed_by_name",
    )
    list_filter = ("status",)
    actions = ["evaluate"]
    fields = (
        "version",
        "status",
        "status_reason",
        "status_changed_by_name",
        "status_changed_at",
        "change_status_link",
        "architecture",
        "network",
        "runtime",
        "registered_at",
        "registered_by_name",
        "gate_verdict",
        "shipped_figures",
        "local_evaluations",
        "shadow_comparison",
        "history",
        "checksums",
    )
    readonly_fields = fields

    # Superusers only; nobody adds (manage.py model_import verifies first) or deletes.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="Change status")
    def change_status_link(self, obj: ModelVersion) -> str:
        url = reverse("admin:diagnosis_modelversion_status", args=[obj.pk])
        return format_html('<a class="button" href="{}">Promote, shadow, retire...</a>', url)

    @admin.display(description="Promotion gate now")
    def gate_verdict(self, obj: ModelVersion) -> str:
        if obj.status == ModelStatus.ACTIVE:
            return "Active: served now."
        decision = promotion_gate(obj)
        checks = format_html_join(
            "",
            "<li>{}: {} against {} (must reach {}; {}) - <strong>{}</strong></li>",
            (
                (
                    check.name,
                    "-" if check.candidate is None else f"{100 * check.candidate:.1f}%",
                    "-" if check.active is None else f"{100 * check.active:.1f}%",
                    "-" if check.must_reach is None else f"{100 * check.must_reach:.1f}%",
                    check.rule,
                    "passes" if check.passed else "fails",
                )
                for check in decision.checks
            ),
        )
        verdict = "Would pass" if decision.passed else "Would be refused"
        return format_html(
            "<p><strong>{}</strong>, measured {}.</p><ul>{}</ul><p>{}</p>",
            verdict,
            decision.basis_words or "-",
            checks,
            decision.refusal,
        )

    @admin.display(description="Shipped validation figures (from the card)")
    def shipped_figures(self, obj: ModelVersion) -> str:
        if not obj.validation:
            return "None in the card."
        return format_html(
            "<p>Measured on {} ({} images, {} melanomas); the boundary: {}.</p>{}",
            obj.validation.get("measured_on", ""),
            obj.validation.get("n", ""),
            obj.validation.get("n_melanoma", ""),
            obj.validation.get("boundary", ""),
            figures_table([(obj.version, obj.validation)]),
        )

    @admin.display(description="Local evaluations (the clinic's confirmed cases)")
    def local_evaluations(self, obj: ModelVersion) -> str:
        evaluations = list(obj.evaluations.all()[:5])
        if not evaluations:
            return "None yet: select the version in the list and run 'Evaluate on local cases'."
        parts = []
        for evaluation in evaluations:
            report = evaluation.report
            cases = report["cases"]
            columns = [(report["candidate"]["version"], report["candidate"])]
            if report.get("active"):
                columns.append((f"{report['active']['version']} (active then)", report["active"]))
            parts.append(
                format_html(
                    "<h4>{} by {}: {} images of {} lesions, {} melanomas; labels {}; "
                    "left out {}</h4>{}<p class='help'>{} Values: 95% bootstrap interval over "
                    "{} lesion resamples, [count].</p>",
                    f"{evaluation.created_at:%d %b %Y %H:%M}",
                    evaluation.created_by_name or "-",
                    cases["n_images"],
                    cases["n_lesions"],
                    cases["n_melanoma"],
                    cases["by_source"],
                    cases["skipped"] or "none",
                    figures_table(columns),
                    report.get("note", ""),
                    report["bootstrap"]["resamples"],
                )
            )
        return format_html_join("", "{}", ((part,) for part in parts))

    @admin.display(description="In shadow, all clinics")
    def shadow_comparison(self, obj: ModelVersion) -> str:
        rows = shadow_comparison_all_clinics(model_version=obj)
        if not rows:
            return "No shadow results."
        row = rows[0]
        return format_html(
            "{} uploads seen; same suggested class on {} of {} ({}%); triage would move up "
            "{}, down {}, stay {} ({}); image gate refused {} the served model analysed, "
            "analysed {} it refused; {} failed; time per image served {} ms, shadow {} ms.",
            row.results,
            row.agree,
            row.compared,
            row.agreement_percent,
            row.moved_up,
            row.moved_down,
            row.same_level,
            row.moves or "no moves",
            row.shadow_refused,
            row.shadow_analysed_refused,
            row.failed,
            row.served_ms,
            row.shadow_ms,
        )

    @admin.display(description="Status history")
    def history(self, obj: ModelVersion) -> str:
        return format_html(
            "<table>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{} &rarr; {}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        f"{change.at:%d %b %Y %H:%M}",
                        change.from_status or "new",
                        change.to_status,
                        change.by_name or "(at start)",
                        change.reason,
                    )
                    for change in obj.status_changes.all()
                ),
            ),
        )

    @admin.action(description="Evaluate on local cases (runs in the worker)", permissions=["view"])
    def evaluate(self, request: HttpRequest, queryset) -> None:
        from diagnosis.tasks import evaluate_model_version

        if not request.user.is_superuser:
            raise PermissionDenied
        for version in queryset:
            transaction.on_commit(
                lambda pk=version.pk: evaluate_model_version.delay(pk, request.user.pk)
            )
        self.message_user(
            request,
            f"{queryset.count()} evaluation(s) queued; the report appears on the version's "
            "page when the worker has run every confirmed case through it.",
            messages.SUCCESS,
        )

    def get_urls(self):
        urls = super().get_urls()
        view = self.admin_site.admin_view(self.status_view)
        return [
            path("<int:object_id>/status/", view, name="diagnosis_modelversion_status"),
            *urls,
        ]

    def status_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if not self.has_module_permission(request):
            raise PermissionDenied
        version = get_object_or_404(ModelVersion, pk=object_id)
        form = StatusChangeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            change, reason = form.cleaned_data["change"], form.cleaned_data["reason"]
            try:
                if change == "promote":
                    services.model_version_promote(
                        actor=request.user, model_version=version, reason=reason, request=request
                    )
                elif change == "rollback":
                    services.model_version_rollback(
                        actor=request.user, reason=reason, request=request
                    )
                else:
                    services.model_version_set_status(
                        actor=request.user,
                        model_version=version,
                        status=change,
                        reason=reason,
                        request=request,
                    )
            except ValidationError as error:
                form.add_error(None, " ".join(error.messages))
            else:
                self.message_user(request, "Done; workers follow from their next task.")
                return redirect("admin:diagnosis_modelversion_change", version.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change the status of {version.version}",
            "opts": self.model._meta,
            "original": version,
            "form": form,
            "gate": self.gate_verdict(version),
        }
        return TemplateResponse(
            request,
            "admin/diagnosis/modelversion/status_change.html",
            context,
            status=400 if form.errors else 200,
        )
