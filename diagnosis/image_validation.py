"""Decide whether an uploaded file is a dermoscopic image we accept, and make it safe to keep.

The type is decided by the bytes, never by the file name or the browser's content type. What is
stored is a fresh encoding of the decoded pixels: metadata (EXIF, GPS, maker notes, ICC text,
comments) and anything appended to the file (a polyglot's HTML or script) are left behind.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from http import HTTPStatus

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from diagnosis.image_fingerprint import difference_hash
from ml.imaging import load_rgb

ACCEPTED_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png")}
THUMBNAIL_SIZE = (256, 256)


class ImageRejected(ValueError):
    """An upload that is not an acceptable image; the message is shown to the user."""

    @property
    def api_status_code(self) -> int:
        """The REST API's answer (melanoma_portal.api_errors reads it)."""
        return int(image_rejection_status(self))


def image_rejection_status(exc: ImageRejected) -> int:
    """413 for a file or picture too big, 415 for something that is not a JPEG/PNG photo, 400 for
    an image we cannot use (empty, damaged, too small).

    clean_image raises one exception type; what it wraps (Pillow's own errors) and its message
    tell the cases apart. tests/api/test_errors.py pins each case, so a reworded message that
    breaks this shows up there.
    """
    cause = exc.__cause__
    message = str(exc)
    if isinstance(cause, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    if message.startswith("The file is ") and "the limit is" in message:
        return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    if "too many pixels" in message:
        return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    if isinstance(cause, UnidentifiedImageError) or message.startswith(
        ("Only JPEG and PNG", "This file is not a JPEG or PNG", "Animated images")
    ):
        return HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    return HTTPStatus.BAD_REQUEST


@dataclass(frozen=True)
class CleanImage:
    content: bytes
    content_type: str
    extension: str
    width: int
    height: int
    sha256: str
    thumbnail: bytes
    perceptual_hash: str = ""  # diagnosis.image_fingerprint: the same picture re-encoded


def _read_all(upload, max_bytes: int) -> bytes:
    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes:
        raise ImageRejected(_too_large(size, max_bytes))
    if hasattr(upload, "seek"):
        upload.seek(0)
    data = upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageRejected(_too_large(len(data), max_bytes))
    return data


def _too_large(size: int, max_bytes: int) -> str:
    return f"The file is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB."


def clean_image(upload, *, max_bytes: int, max_pixels: int) -> CleanImage:
    """Validate an uploaded file and return its re-encoded, metadata-free form.

    Raises ImageRejected with a message meant for the person who uploaded it.
    """
    data = _read_all(upload, max_bytes)
    if not data:
        raise ImageRejected("The file is empty (0 bytes).")
    # WeasyPrint turns Pillow's process-wide LOAD_TRUNCATED_IMAGES on when it is imported; a
    # damaged upload must still be refused once a report has been rendered in this process.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    previous_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = max_pixels
        with warnings.catch_warnings():
            # Pillow only warns between the limit and twice the limit; a bomb is an error here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                image = Image.open(io.BytesIO(data))
            except Image.DecompressionBombError as exc:
                raise ImageRejected(_too_many_pixels(max_pixels)) from exc
            except Image.DecompressionBombWarning as exc:
                raise ImageRejected(_too_many_pixels(max_pixels)) from exc
            except UnidentifiedImageError as exc:
                raise ImageRejected(
                    "This file is not a JPEG or PNG image (its contents are not an image, "
                    "whatever its name says)."
                ) from exc
            except (OSError, SyntaxError, ValueError) as exc:
                # Cut inside its header: Pillow knows the format but cannot read the size.
                raise ImageRejected(
                    "The image is damaged or incomplete (its header could not be read); "
                    "please upload the file again."
                ) from exc
            if image.format not in ACCEPTED_FORMATS:
                raise ImageRejected(
                    f"Only JPEG and PNG images are accepted; this file is {image.format}."
                )
            if getattr(image, "is_animated", False) or getattr(image, "n_frames", 1) > 1:
                raise ImageRejected("Animated images are not accepted; upload a single photo.")
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRejected(_too_many_pixels(max_pixels))
            try:
                image.load()
            except (OSError, SyntaxError, ValueError) as exc:
                raise ImageRejected(
                    "The image is damaged or incomplete (it could not be decoded); "
                    "please upload the file again."
                ) from exc
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit
    if width < 32 or height < 32:
        raise ImageRejected(f"The image is only {width}x{height} pixels; at least 32x32 needed.")

    format_name = image.format
    # Apply the camera's orientation to the pixels before the EXIF that holds it is dropped.
    rgb = load_rgb(ImageOps.exif_transpose(image)).copy()
    # Pillow writes a JPEG comment, EXIF or ICC data found in `info` back out on save; a
    # polyglot's HTML rides in a comment segment. Nothing of the upload but its pixels stays.
    rgb.info.clear()
    content_type, extension = ACCEPTED_FORMATS[format_name]
    out = io.BytesIO()
    if format_name == "JPEG":
        rgb.save(out, "JPEG", quality=95, subsampling=0)
    else:
        rgb.save(out, "PNG", optimize=False)
    content = out.getvalue()
    thumb = rgb.copy()
    thumb.thumbnail(THUMBNAIL_SIZE)
    thumb_out = io.BytesIO()
    thumb.save(thumb_out, "JPEG", quality=85)
    return CleanImage(
        content=content,
        content_type=content_type,
        extension=extension,
        width=rgb.width,
        height=rgb.height,
        sha256=hashlib.sha256(content).hexdigest(),
        thumbnail=thumb_out.getvalue(),
        perceptual_hash=difference_hash(rgb),
    )


def _too_many_pixels(max_pixels: int) -> str:
    return f"The image has too many pixels; the limit is {max_pixels / 1e6:.0f} megapixels."
