"""Hostile and odd files for the upload tests: each built from scratch, in memory."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from PIL import Image


def _save(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def skin(size=(96, 72), mode="RGB", colour=(170, 110, 80)) -> Image.Image:
    return Image.new(mode, size, colour)


def jpeg(size=(96, 72)) -> bytes:
    return _save(skin(size), "JPEG", quality=92)


def png(size=(96, 72)) -> bytes:
    return _save(skin(size), "PNG")


SCRIPT = b"<html><body><script>alert(document.cookie)</script></body></html>"


def jpeg_html_polyglot() -> bytes:
    """A valid JPEG with HTML in a comment segment and after the end-of-image marker: a browser
    sniffing it as HTML would run the script."""
    return _save(skin(), "JPEG", comment=SCRIPT) + SCRIPT


def html_then_jpeg() -> bytes:
    return SCRIPT + jpeg()


def svg_with_script() -> bytes:
    return (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        b"<script>alert(1)</script><rect width='64' height='64' fill='red'/></svg>"
    )


def pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R/OpenAction<</S/JavaScript/JS(app.alert(1))"
        b">>>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int = 50_000) -> bytes:
    """A PNG claiming side x side pixels of greyscale with a tiny compressed body: decoding it
    would need gigabytes."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side + 1) * 64, 9)  # only the start of the data
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )


def jpeg_huge_dimensions() -> bytes:
    """A real JPEG whose frame header is rewritten to claim 65000 x 65000 pixels."""
    data = bytearray(jpeg())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    return bytes(data)


def truncated_jpeg() -> bytes:
    data = _save(Image.effect_noise((256, 256), 60).convert("RGB"), "JPEG", quality=95)
    return data[: len(data) // 2]


def truncated_png() -> bytes:
    data = _save(Image.effect_noise((256, 256), 60).convert("RGB"), "PNG")
    return data[: len(data) // 2]


def animated_png() -> bytes:
    frames = [skin(colour=(200, 0, 0)), skin(colour=(0, 200, 0))]
    return _save(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)


def gif() -> bytes:
    return _save(skin(mode="P", colour=3), "GIF")


def webp() -> bytes:
    return _save(skin(), "WEBP")


def tiff() -> bytes:
    return _save(skin(), "TIFF")


def bmp() -> bytes:
    return _save(skin(), "BMP")


def cmyk_jpeg() -> bytes:
    # Pure cyan-free "red": C=0, M=255, Y=255, K=0 -> RGB (255, 0, 0).
    return _save(Image.new("CMYK", (96, 72), (0, 255, 255, 0)), "JPEG", quality=95)


def png_16bit_grey(value: int = 40_000) -> bytes:
    import numpy as np

    image = Image.fromarray(np.full((72, 96), value, dtype=np.uint16))
    assert image.mode == "I;16" and image.getpixel((0, 0)) == value
    return _save(image, "PNG")


def greyscale_jpeg(level: int = 120) -> bytes:
    return _save(Image.new("L", (96, 72), level), "JPEG", quality=95)


def palette_png_with_transparency() -> bytes:
    """Left half fully transparent, right half opaque red, in a palette image."""
    image = Image.new("RGBA", (96, 72), (255, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, 48, 72))
    return _save(image.quantize(colors=4, method=Image.Quantize.FASTOCTREE), "PNG")


def exif_gps_jpeg() -> bytes:
    image = skin((120, 90))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "PhoneModel 12"
    exif[0x927C] = b"MAKERNOTE-SECRET"  # maker note
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 12.0, 30.0)
    gps[3] = "E"
    gps[4] = (16.0, 22.0, 10.0)
    return _save(image, "JPEG", exif=exif)


def exif_rotated_jpeg() -> bytes:
    """Stored 120 wide x 60 high, the top row red; EXIF orientation 6 says 'rotate 90 CW'."""
    image = skin((120, 60), colour=(0, 0, 200))
    image.paste((220, 0, 0), (0, 0, 120, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(image, "JPEG", exif=exif, quality=95)


def png_with_text_chunks() -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SCRIPT.decode())
    info.add_text("Author", "Dr. Secret, patient Jane Doe, MRN 12345")
    return _save(skin(), "PNG", pnginfo=info)


def text_file() -> bytes:
    return b"patient notes: this is not an image\n" * 10


def zip_file() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lesion.jpg", jpeg())
    return buffer.getvalue()


def html() -> bytes:
    return SCRIPT


def tiny_1x1_png() -> bytes:
    return _save(skin((1, 1)), "PNG")


def zero_bytes() -> bytes:
    return b""


def mpo_like_multiframe_tiff() -> bytes:
    frames = [skin(), skin(colour=(10, 10, 10))]
    return _save(frames[0], "TIFF", save_all=True, append_images=frames[1:])
