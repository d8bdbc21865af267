"""A huge image is analysed at a working resolution, and its heatmap drawn there.

The outside-style test found a flat 7000 x 7000 PNG of 62 KB costing 19 s of worker time, 13.5 s
of it Grad-CAM overlaid at full resolution. These assert the resolution the work is done at
(pixel counts), never a time.
"""

from __future__ import annotations

import io

from PIL import Image

from ml.classes import class_index
from ml.gradcam import grad_cam
from ml.imaging import WORKING_MAX_PIXELS, working_copy, working_size
from tests.ml.conftest import lesion_like_image

HUGE = (7000, 7000)


def test_a_7000_square_is_analysed_at_2048_square():
    assert WORKING_MAX_PIXELS == 2048 * 2048
    copy = working_copy(Image.new("RGB", HUGE, (200, 150, 130)))
    assert copy.size == (2048, 2048)
    assert copy.mode == "RGB"


def test_the_working_size_keeps_the_aspect_and_stays_within_the_cap():
    width, height = working_size((8000, 2000), 1_000_000)
    assert width * height <= 1_000_000
    assert abs(width / height - 4.0) < 0.01
    assert working_size((600, 450)) == (600, 450)


def test_an_image_within_the_cap_is_analysed_as_it_is():
    image = lesion_like_image((600, 450))
    assert working_copy(image) is image


def test_a_huge_jpeg_is_decoded_at_a_reduced_scale_never_at_full_size():
    buffer = io.BytesIO()
    Image.new("RGB", HUGE, (200, 150, 130)).save(buffer, "JPEG", quality=80)
    source = Image.open(io.BytesIO(buffer.getvalue()))

    copy = working_copy(source)

    assert copy.size == (2048, 2048)
    # Pillow's draft mode decoded 1/2 scale (3500 x 3500), the smallest at least 2048.
    assert source.size == (3500, 3500)


def test_heatmap_of_a_7000_square_is_drawn_at_the_working_resolution(tiny_classifier):
    huge = lesion_like_image((700, 700)).resize(HUGE)

    heatmap = tiny_classifier.heatmap(huge, "mel")

    assert heatmap.size == (2048, 2048)
    assert huge.size == HUGE  # the caller's image is left as it was


def test_grad_cam_itself_runs_at_the_models_resolution(tiny_classifier):
    picture = working_copy(lesion_like_image((700, 700)).resize(HUGE))
    batch = tiny_classifier.preprocess(picture)[None]
    cam = grad_cam(tiny_classifier.model, batch, class_index("mel"), tiny_classifier.model.bn2)
    size = tiny_classifier.config.input_size
    assert batch.shape[-2:] == (size, size)
    assert cam.shape == (size // 32, size // 32)
