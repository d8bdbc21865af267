"""The diagnosis pages: dashboard, lesions, uploads, analysis results, and image files.

Images are never under a public URL: `image_file` and `heatmap_file` check the clinic, record
the access, and forbid caching.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.audit import audit_record
from accounts.decorators import clinic_role_required
from diagnosis import presentation, selectors, services
from diagnosis.forms import ImageUploadForm, LesionForm
from diagnosis.image_validation import ImageRejected
from diagnosis.models import AnalysisStatus
from patients.selectors import patient_get

RECENT = 10
QUEUE_SHOWN = 20


@clinic_role_required()
def dashboard(request: HttpRequest) -> HttpResponse:
    counts = selectors.dashboard_counts(user=request.user)
    queue = list(selectors.live_queue(user=request.user)[:QUEUE_SHOWN])
    for analysis in queue:
        analysis.position = selectors.queue_position(analysis=analysis)
    recent = selectors.analysis_list(user=request.user).order_by("-queued_at", "-id")[:RECENT]
    return render(
        request,
        "diagnosis/dashboard.html",
        {"counts": counts, "queue": queue, "recent": recent},
    )


@clinic_role_required()
def lesion_create(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(user=request.user, patient_id=patient_id)
    form = LesionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            lesion = services.lesion_create(
                actor=request.user, patient=patient, request=request, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            messages.success(request, f"Lesion recorded: {lesion}.")
            return redirect(f"{reverse('diagnosis:upload', args=[patient.pk])}?lesion={lesion.pk}")
    return render(request, "diagnosis/lesion_form.html", {"form": form, "patient": patient})


@clinic_role_required()
def image_upload(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(user=request.user, patient_id=patient_id)
    lesions = selectors.lesion_list(user=request.user).filter(patient=patient)
    if request.method == "POST":
        form = ImageUploadForm(request.POST, request.FILES, lesions=lesions)
        if form.is_valid():
            try:
                analysis = services.image_upload(
                    actor=request.user,
                    lesion=form.cleaned_data["lesion"],
                    upload=form.cleaned_data["upload"],
                    submission_token=form.cleaned_data["submission_token"],
                    request=request,
                )
            except ImageRejected as rejected:
                form.add_error("image", str(rejected))
            except ValidationError as error:
                form.add_error(None, error.messages)
            else:
                return redirect("diagnosis:analysis", analysis_id=analysis.pk)
    else:
        form = ImageUploadForm(lesions=lesions, initial={"lesion": request.GET.get("lesion")})
    status = 400 if form.is_bound else 200
    return render(
        request, "diagnosis/upload.html", {"form": form, "patient": patient}, status=status
    )


@clinic_role_required()
def analysis_detail(request: HttpRequest, analysis_id: int) -> HttpResponse:
    analysis = selectors.analysis_get(user=request.user, analysis_id=analysis_id)
    audit_record(action="analysis.view", request=request, obj=analysis)
    return render(
        request,
        "diagnosis/analysis_detail.html",
        {
            "analysis": analysis,
            "patient": analysis.image.lesion.patient,
            "rows": (
                presentation.probability_rows(analysis.probabilities, top_class=analysis.top_class)
                if analysis.status == AnalysisStatus.DONE
                else []
            ),
            "top_class_name": presentation.class_name(analysis.top_class),
            "position": selectors.queue_position(analysis=analysis),
        },
    )


@clinic_role_required()
@require_GET
@never_cache
def analysis_status(request: HttpRequest, analysis_id: int) -> JsonResponse:
    """What the result page polls while an analysis waits: state and queue position only."""
    analysis = selectors.analysis_get(user=request.user, analysis_id=analysis_id)
    return JsonResponse(
        {
            "id": analysis.pk,
            "status": analysis.status,
            "status_display": analysis.get_status_display(),
            "queue_position": selectors.queue_position(analysis=analysis),
            "failure_reason": analysis.failure_reason,
        }
    )


@clinic_role_required()
@require_POST
def analysis_retry(request: HttpRequest, analysis_id: int) -> HttpResponse:
    analysis = selectors.analysis_get(user=request.user, analysis_id=analysis_id)
    requeued = analysis.status == AnalysisStatus.FAILED
    # The service audits the request either way (requeued or not).
    services.analysis_retry(actor=request.user, analysis=analysis, request=request)
    if requeued:
        messages.success(request, "The analysis is queued again.")
    else:
        messages.info(request, f"The analysis is {analysis.get_status_display().lower()}.")
    return redirect("diagnosis:analysis", analysis_id=analysis.pk)


def _private_file(field, content_type: str) -> FileResponse:
    if not field:
        raise Http404("This image is no longer stored.")
    try:
        handle = field.open("rb")
    except FileNotFoundError:
        raise Http404("This image is no longer stored.") from None
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "no-store, private"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@clinic_role_required()
@require_GET
def image_file(request: HttpRequest, image_id: int) -> FileResponse:
    """The stored (metadata-free) image, or its thumbnail with ?size=thumb."""
    image = selectors.image_get(user=request.user, image_id=image_id)
    thumb = request.GET.get("size") == "thumb"
    audit_record(action="image.view", request=request, obj=image, thumbnail=thumb)
    if thumb:
        return _private_file(image.thumbnail, "image/jpeg")
    return _private_file(image.file, image.content_type)


@clinic_role_required()
@require_GET
def heatmap_file(request: HttpRequest, analysis_id: int, which: str) -> FileResponse:
    analysis = selectors.analysis_get(user=request.user, analysis_id=analysis_id)
    field = {"top": analysis.heatmap_top, "melanoma": analysis.heatmap_melanoma}.get(which)
    if field is None:
        raise Http404("No such heatmap.")
    audit_record(action="image.view", request=request, obj=analysis, heatmap=which)
    return _private_file(field, "image/png")
