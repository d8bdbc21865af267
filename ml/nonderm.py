"""Images that are not dermoscopy, from files that ship inside installed packages plus a few
drawn here: the set the image gate's rejection rate is measured on. Nothing is downloaded.

Kinds: animals (scikit-image's cat and horse), objects (coffee cup, rocket, coins, clock,
motorcycle), people and faces (astronaut, camera man, Grace Hopper), scenes (scikit-learn's
China and flower), textures (brick, grass, gravel), documents and text (a scanned page, drawn
forms), screens and graphics (drawn user interfaces, logos, a chessboard), and medical images
of other kinds (a retina photograph, histology, microscopy), the hard cases for a gate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

PACKAGED: dict[str, tuple[str, str]] = {
    # name: (kind, "package:relative path")
    "cat": ("animal", "skimage:data/chelsea.png"),
    "horse": ("animal", "skimage:data/horse.png"),
    "coffee": ("object", "skimage:data/coffee.png"),
    "rocket": ("object", "skimage:data/rocket.jpg"),
    "coins": ("object", "skimage:data/coins.png"),
    "clock": ("object", "skimage:data/clock_motion.png"),
    "motorcycle": ("object", "skimage:data/motorcycle_left.png"),
    "astronaut": ("face", "skimage:data/astronaut.png"),
    "cameraman": ("face", "skimage:data/camera.png"),
    "grace_hopper": ("face", "matplotlib:mpl-data/sample_data/grace_hopper.jpg"),
    "china": ("scene", "sklearn:datasets/images/china.jpg"),
    "flower": ("scene", "sklearn:datasets/images/flower.jpg"),
    "hubble": ("scene", "skimage:data/hubble_deep_field.jpg"),
    "moon": ("scene", "skimage:data/moon.png"),
    "brick": ("texture", "skimage:data/brick.png"),
    "grass": ("texture", "skimage:data/grass.png"),
    "gravel": ("texture", "skimage:data/gravel.png"),
    "page": ("document", "skimage:data/page.png"),
    "text": ("document", "skimage:data/text.png"),
    "logo": ("graphic", "skimage:data/logo.png"),
    "color_wheel": ("graphic", "skimage:data/color.png"),
    "chessboard": ("graphic", "skimage:data/chessboard_RGB.png"),
    "mpl_logo": ("graphic", "matplotlib:mpl-data/sample_data/logo2.png"),
    "retina": ("other medical", "skimage:data/retina.jpg"),
    "histology_ihc": ("other medical", "skimage:data/ihc.png"),
    "cells": ("other medical", "skimage:data/cell.png"),
    "microaneurysms": ("other medical", "skimage:data/microaneurysms.png"),
    "phantom": ("other medical", "skimage:data/phantom.png"),
}


def _package_path(spec: str) -> Path:
    package, relative = spec.split(":", 1)
    module = __import__(package)
    return Path(module.__file__).resolve().parent / relative


def _form(seed: int) -> Image.Image:
    """A document: lines of 'text' and boxes on white, as a photographed form."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (800, 600), (250, 250, 245))
    draw = ImageDraw.Draw(image)
    y = 40
    while y < 560:
        x = 40
        while x < 740:
            width = int(rng.integers(20, 90))
            draw.rectangle([x, y, x + width, y + 10], fill=(40, 40, 60))
            x += width + int(rng.integers(8, 16))
        y += int(rng.integers(22, 34))
    draw.rectangle([500, 400, 760, 560], outline=(0, 0, 0), width=3)
    return image


def _screen(seed: int) -> Image.Image:
    """A screenshot: a window with a title bar, buttons and panels."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (1024, 640), (236, 239, 244))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, 1024, 48], fill=(31, 95, 153))
    for i in range(4):
        x = 20 + 240 * i
        colour = tuple(int(c) for c in rng.integers(60, 220, 3))
        draw.rectangle([x, 80, x + 220, 300], fill=colour)
        draw.rectangle([x, 320, x + 220, 360], fill=(255, 255, 255), outline=(120, 120, 120))
    for row in range(8):
        draw.rectangle([20, 400 + 28 * row, 1000, 420 + 28 * row], fill=(255, 255, 255))
    return image


def _drawn() -> Iterator[tuple[str, str, Image.Image]]:
    for seed in range(3):
        yield f"form_{seed}", "document", _form(seed)
        yield f"screen_{seed}", "screen", _screen(seed)
    rng = np.random.default_rng(7)
    yield "noise", "graphic", Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))


def non_dermoscopic_images() -> Iterator[tuple[str, str, Image.Image]]:
    """(name, kind, RGB image) for every image of the set, packaged ones first."""
    for name, (kind, spec) in PACKAGED.items():
        path = _package_path(spec)
        if not path.is_file():
            continue  # a package version without that sample: the report counts what ran
        with Image.open(path) as image:
            yield name, kind, image.convert("RGB")
    yield from _drawn()
