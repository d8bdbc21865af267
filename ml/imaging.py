"""Pixel-format handling that needs Pillow only.

Kept apart from ml.preprocessing so the web process can normalise uploads without importing
torch, which costs seconds and hundreds of megabytes in every process that loads it.
"""

from __future__ import annotations

from PIL import Image


def load_rgb(image: Image.Image) -> Image.Image:
    """RGB view of any decoded image (greyscale, CMYK, 16-bit, palette, alpha)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits rather than letting Pillow clip at 255.
        image = image.point(lambda value: value / 256).convert("L")
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


# The most pixels the portal decodes and analyses of one image (2048 x 2048). The network sees a
# 192-pixel crop and Grad-CAM a 6x6 map; beyond this, pixels only cost worker time and memory
# (a flat 7000 x 7000 PNG of 62 KB decodes to 147 MB of RGB).
WORKING_MAX_PIXELS = 2048 * 2048


def working_size(size: tuple[int, int], max_pixels: int = WORKING_MAX_PIXELS) -> tuple[int, int]:
    """`size` scaled down, aspect kept, to at most `max_pixels` pixels; unchanged if within."""
    width, height = size
    if width * height <= max_pixels:
        return size
    scale = (max_pixels / (width * height)) ** 0.5
    return max(1, int(width * scale)), max(1, int(height * scale))


def working_copy(image: Image.Image, max_pixels: int = WORKING_MAX_PIXELS) -> Image.Image:
    """An RGB copy of at most `max_pixels` pixels to analyse; the image itself if it is small
    enough. An image not decoded yet decodes smaller where the format allows it (a JPEG at 1/2,
    1/4 or 1/8 scale through Pillow's draft mode), so the full size is never held in memory."""
    target = working_size(image.size, max_pixels)
    if target == image.size:
        return load_rgb(image)
    if image.format == "JPEG":
        # The smallest scale still at least `target`; a no-op once the image is decoded.
        image.draft("RGB", target)
    image = load_rgb(image)
    target = working_size(image.size, max_pixels)
    if target == image.size:
        return image
    # reducing_gap: box-reduce by whole factors first, then Lanczos the last step.
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
