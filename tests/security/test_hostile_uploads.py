"""Hostile and odd files through diagnosis.image_validation.clean_image and the upload service.

Rejected files get a clear message and leave nothing behind (no row, no file); accepted odd
files (CMYK, 16-bit, greyscale, palette with transparency, EXIF-rotated, metadata-laden,
polyglot) are stored as a fresh RGB encoding with the right pixels and no metadata or payload.
"""

from __future__ import annotations

import io
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from diagnosis.image_validation import ImageRejected, clean_image
from diagnosis.models import Analysis, DermoscopicImage
from diagnosis.services import image as services
from tests.security import hostile_files as hf

MAX_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 4_000_000

# name -> (file name the uploader claims, bytes, a part of the message the person sees)
REJECTED = {
    "html_then_jpeg": ("lesion.jpg", hf.html_then_jpeg, "not a JPEG or PNG"),
    "svg_with_script": ("lesion.jpg", hf.svg_with_script, "not a JPEG or PNG"),
    "pdf_renamed_jpg": ("lesion.jpg", hf.pdf, "not a JPEG or PNG"),
    "png_decompression_bomb": ("lesion.png", hf.png_bomb, "too many pixels"),
    "jpeg_huge_dimensions": ("lesion.jpg", hf.jpeg_huge_dimensions, "too many pixels"),
    "truncated_jpeg": ("lesion.jpg", hf.truncated_jpeg, "damaged or incomplete"),
    "truncated_png": ("lesion.png", hf.truncated_png, "damaged or incomplete"),
    "zero_bytes": ("lesion.jpg", hf.zero_bytes, "empty"),
    "animated_png": ("lesion.png", hf.animated_png, "Animated images"),
    "gif": ("lesion.gif", hf.gif, "this file is GIF"),
    "webp": ("lesion.jpg", hf.webp, "this file is WEBP"),
    "tiff": ("lesion.tif", hf.tiff, "this file is TIFF"),
    "multi_page_tiff": ("lesion.jpg", hf.mpo_like_multiframe_tiff, "this file is TIFF"),
    "bmp": ("lesion.bmp", hf.bmp, "this file is BMP"),
    "text_file": ("lesion.jpg", hf.text_file, "not a JPEG or PNG"),
    "zip_archive": ("lesion.zip", hf.zip_file, "not a JPEG or PNG"),
    "html_page": ("lesion.html", hf.html, "not a JPEG or PNG"),
    "tiny_1x1": ("lesion.png", hf.tiny_1x1_png, "only 1x1 pixels"),
}

ACCEPTED = {
    "cmyk_jpeg": ("lesion.jpg", hf.cmyk_jpeg),
    "png_16bit_grey": ("lesion.png", hf.png_16bit_grey),
    "greyscale_jpeg": ("lesion.jpg", hf.greyscale_jpeg),
    "palette_png_with_transparency": ("lesion.png", hf.palette_png_with_transparency),
    "exif_gps_jpeg": ("lesion.jpg", hf.exif_gps_jpeg),
    "exif_rotated_jpeg": ("lesion.jpg", hf.exif_rotated_jpeg),
    "jpeg_html_polyglot": ("lesion.jpg", hf.jpeg_html_polyglot),
    "png_with_text_chunks": ("lesion.png", hf.png_with_text_chunks),
}


def clean(data: bytes, name: str = "lesion.jpg", **limits):
    upload = SimpleUploadedFile(name, data, content_type="image/jpeg")
    return clean_image(
        upload,
        max_bytes=limits.get("max_bytes", MAX_BYTES),
        max_pixels=limits.get("max_pixels", MAX_PIXELS),
    )


def decoded(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


def close(pixel, expected, tolerance: int = 6) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_hostile_file_is_rejected_with_a_clear_message(case: str):
    name, build, message = REJECTED[case]
    with pytest.raises(ImageRejected) as caught:
        clean(build(), name)
    assert message in str(caught.value)


def test_file_over_the_byte_limit_is_rejected_before_decoding():
    data = hf.jpeg() + b"\0" * 2048
    with pytest.raises(ImageRejected, match="the limit is"):
        clean(data, max_bytes=1024)


def test_pixels_between_the_limit_and_twice_the_limit_count_as_a_bomb():
    # Pillow only warns in this band; the warning must be an error here.
    data = hf.png(size=(150, 100))  # 15,000 pixels against a 10,000 limit
    with pytest.raises(ImageRejected, match="too many pixels"):
        clean(data, name="lesion.png", max_pixels=10_000)


def test_cmyk_jpeg_is_converted_to_the_same_colour_in_rgb():
    result = clean(hf.cmyk_jpeg())
    image = decoded(result.content)
    assert image.mode == "RGB" and image.format == "JPEG"
    assert close(image.getpixel((48, 36)), (255, 0, 0), tolerance=8)


def test_16_bit_png_is_scaled_to_8_bits_not_clipped():
    result = clean(hf.png_16bit_grey(40_000), name="lesion.png")
    image = decoded(result.content)
    assert image.mode == "RGB" and image.format == "PNG"
    assert image.getpixel((10, 10)) == (156, 156, 156)  # 40000 / 256, not 255


def test_greyscale_jpeg_becomes_rgb_with_equal_channels():
    result = clean(hf.greyscale_jpeg(120))
    image = decoded(result.content)
    assert image.mode == "RGB"
    r, g, b = image.getpixel((40, 30))
    assert r == g == b and abs(r - 120) <= 3


def test_transparent_palette_png_is_composited_on_white():
    result = clean(hf.palette_png_with_transparency(), name="lesion.png")
    image = decoded(result.content)
    assert image.mode == "RGB"
    assert image.getpixel((10, 10)) == (255, 255, 255)
    assert close(image.getpixel((80, 10)), (255, 0, 0), tolerance=10)


def test_exif_gps_and_maker_notes_are_stripped():
    original = hf.exif_gps_jpeg()
    assert b"PhoneMaker" in original and b"MAKERNOTE-SECRET" in original
    result = clean(original)
    assert b"PhoneMaker" not in result.content
    assert b"MAKERNOTE-SECRET" not in result.content
    assert b"Exif" not in result.content
    assert not decoded(result.content).getexif()
    assert b"Exif" not in result.thumbnail


def test_exif_orientation_is_applied_to_the_pixels_before_it_is_dropped():
    result = clean(hf.exif_rotated_jpeg())
    image = decoded(result.content)
    assert (result.width, result.height) == (60, 120) == image.size
    # The red top row of the stored picture is the right-hand column once rotated 90 CW.
    assert close(image.getpixel((55, 60)), (220, 0, 0), tolerance=30)
    assert close(image.getpixel((5, 60)), (0, 0, 200), tolerance=30)


@pytest.mark.parametrize("case", ["jpeg_html_polyglot", "png_with_text_chunks"])
def test_payload_hidden_in_an_image_does_not_survive_re_encoding(case: str):
    name, build = ACCEPTED[case]
    original = build()
    assert b"<script>" in original
    result = clean(original, name)
    assert b"<script" not in result.content and b"<html" not in result.content
    assert b"Jane Doe" not in result.content
    assert decoded(result.content).size == (96, 72)


# --- through the upload service: the one way an image enters the portal --------------------


def _files_on_disk(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    found = []
    for folder, _dirs, files in os.walk(root):
        found.extend(os.path.join(folder, f) for f in files)
    return found


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(REJECTED))
def test_upload_service_rejects_hostile_file_and_keeps_nothing(case: str, staff, lesion, settings):
    name, build, message = REJECTED[case]
    upload = SimpleUploadedFile(name, build(), content_type="image/jpeg")
    with pytest.raises(ImageRejected) as caught:
        services.image_upload(actor=staff, lesion=lesion, upload=upload)
    assert message in str(caught.value)
    assert DermoscopicImage.objects.count() == 0
    assert Analysis.objects.count() == 0
    assert _files_on_disk(settings) == []


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_upload_service_stores_odd_file_as_clean_rgb_that_a_worker_can_read(
    case: str, staff, lesion
):
    name, build = ACCEPTED[case]
    upload = SimpleUploadedFile(name, build(), content_type="text/html")
    analysis = services.image_upload(actor=staff, lesion=lesion, upload=upload)
    image = analysis.image
    assert analysis.status == "queued"
    assert image.content_type in ("image/jpeg", "image/png")
    # The worker opens the stored file exactly like this (diagnosis.services.image._open_image).
    picture = services._open_image(image)
    assert picture is not None and picture.mode == "RGB"
    assert picture.size == (image.width, image.height)
    with image.file.open("rb") as handle:
        stored = handle.read()
    assert b"<script" not in stored and b"GPS" not in stored
    assert image.file.name.endswith((".jpg", ".png"))
