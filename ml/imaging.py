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
