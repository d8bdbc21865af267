"""How `auto` times the ONNX forms: in turns, each keeping its best turn, so that load from
other work at one moment does not pick the runtime a worker serves for the rest of its life."""

from __future__ import annotations

import time

import numpy as np

from ml.runtime_choice import images_per_s_in_turns

BATCH = np.zeros((8, 3, 4, 4), dtype=np.float32)


def taking(seconds: float):
    """A forward that takes `seconds` a call, as a runtime on a quiet CPU would."""

    def forward(batch: np.ndarray) -> None:
        time.sleep(seconds)

    return forward


def test_the_faster_forward_measures_more_images_per_second():
    rates = images_per_s_in_turns(
        {"slow": taking(0.006), "fast": taking(0.002)}, BATCH, seconds=0.3, rounds=3
    )

    assert rates["fast"] > 2 * rates["slow"] > 0


def test_a_burst_of_other_load_at_start_does_not_pick_the_slower_runtime():
    # For the first 0.3 s something else has the CPU (a web server starting beside the
    # worker): whatever runs then takes ten times as long.
    load_ends = time.perf_counter() + 0.3

    def under_load(seconds: float):
        def forward(batch: np.ndarray) -> None:
            time.sleep(seconds * (10 if time.perf_counter() < load_ends else 1))

        return forward

    rates = images_per_s_in_turns(
        {"fast": under_load(0.002), "steady": under_load(0.005)},
        BATCH,
        seconds=0.3,
        rounds=5,
    )

    # Timed one after the other, "fast" would have run entirely under the load (about
    # 400 images/s) and "steady" entirely after it (1,600): the slower one would win.
    assert rates["fast"] > rates["steady"]
