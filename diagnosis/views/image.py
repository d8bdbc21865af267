"""Uploading a dermoscopic image, and the image files themselves.

Images are never under a public URL: `image_file` and `heatmap_file` check the clinic, record
the access, and forbid caching.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from accounts.audit import audit_record
from accounts.decorators import clinic_role_required
from diagnosis import selectors, services
from diagnosis.forms.lesion import ImageUploadForm
from diagnosis.image_validation import ImageRejected
from diagnosis.services.image import UploadQuotaExceeded
from patients.selectors import patient_get


@clinic_role_required()
def image_upload(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(user=request.user, patient_id=patient_id)
    lesions = selectors.lesion_list(user=request.user).filter(patient=patient)
    duplicates = []
    status = 200
    if request.method == "POST":
        form = ImageUploadForm(request.POST, request.FILES, lesions=lesions)
        if form.is_valid():
            lesion = form.cleaned_data["lesion"]
            try:
                analysis = services.image_upload(
                    actor=request.user,
                    lesion=lesion,
                    upload=form.cleaned_data["upload"],
                    submission_token=form.cleaned_data["submission_token"],
                    allow_duplicate=form.cleaned_data["allow_duplicate"],
                    request=request,
                )
            except UploadQuotaExceeded as refused:
                form.add_error(None, str(refused))
                status = 429
            except ImageRejected as rejected:
                form.add_error("image", str(rejected))
            except services.DuplicateImage as duplicate:
                duplicates = duplicate.matches
                # The warning tells of other images (maybe another patient's): a read.
                audit_record(
                    action="image.duplicate_warning",
                    request=request,
                    obj=lesion,
                    matches=[match.image_id for match in duplicates],
                )
                form.ask_to_confirm_duplicate()
            except ValidationError as error:
                form.add_error(None, error.messages)
            else:
                return redirect("diagnosis:analysis", analysis_id=analysis.pk)
    else:
        form = ImageUploadForm(lesions=lesions, initial={"lesion": request.GET.get("lesion")})
    if form.is_bound and status == 200:
        status = 400
    # The page names the patient and lists their lesions; a successful upload is audited by
    # the service instead.
    audit_record(action="patient.view", request=request, obj=patient, page="upload")
    return render(
        request,
        "diagnosis/upload.html",
        {"form": form, "patient": patient, "duplicates": duplicates},
        status=status,
    )


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
