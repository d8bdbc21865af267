"""A perceptual fingerprint of a picture, for noticing the same picture uploaded twice.

The same file gives the same sha256 (of the stored, re-encoded image); the same picture
re-encoded, resized or re-saved does not, but keeps its difference hash: the picture shrunk to
17x16 grey pixels, one bit per horizontal pair (is the right one brighter?), 256 bits. Two
hashes a few bits apart are the same picture; photographs of different lesions differ in a
hundred or so.

Why our own dHash and not the `imagehash` package: the algorithm is the five lines below, and
imagehash would bring PyWavelets into the shared environment for a hash we would use one way.

The thresholds were measured on HAM10000 (bench/near_duplicates.py, all 50 million pairs of
its 10,015 images): re-encodings (JPEG quality 50-85, resized 0.7-2x, PNG) of one picture
differ by at most 24 bits in 99.5% of cases and by at most 12 in 89%; pairs of different
lesions are 12 bits or closer in 2 of 50 million pairs and 24 bits or closer in 18 per million
(1.9% of the pairs HAM10000 files under one lesion are that close: often the same picture
cropped, a warning worth reading).
A match on the same patient's lesions (where a second upload is the likely mistake) uses 24; a
match on another patient (a claim that the image may be filed on the wrong patient) uses the
stricter 12, so that a clinic with 100,000 images sees such a false warning about once in 250
uploads.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

HASH_SIDE = 16  # 16 x 16 = 256 bits
SAME_PATIENT_MAX_BITS = 24
OTHER_PATIENT_MAX_BITS = 12
# A picture with almost no detail (a flat colour, a blank frame) hashes to nearly all zeros or
# ones, as every other such picture does: its hash says nothing, so it is not compared (the
# sha256 still is). HAM10000's 10,015 images have 59 to 167 ones of 256.
UNINFORMATIVE_BITS = 16


def difference_hash(image: Image.Image) -> str:
    """The picture's 256-bit difference hash as 64 hex digits."""
    grey = image.convert("L").resize((HASH_SIDE + 1, HASH_SIDE), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.int16)
    return np.packbits((pixels[:, 1:] > pixels[:, :-1]).ravel()).tobytes().hex()


def is_informative(hash_hex: str) -> bool:
    """Whether the hash has enough detail to compare (see UNINFORMATIVE_BITS)."""
    ones = int(hash_hex, 16).bit_count() if hash_hex else 0
    return UNINFORMATIVE_BITS <= ones <= HASH_SIDE * HASH_SIDE - UNINFORMATIVE_BITS


def as_words(hashes: list[str]) -> np.ndarray:
    """Hex hashes as an (n, 4) array of 64-bit words, for distances to many at once."""
    if not hashes:
        return np.zeros((0, 4), dtype=np.uint64)
    raw = b"".join(bytes.fromhex(h) for h in hashes)
    return np.frombuffer(raw, dtype=np.uint64).reshape(len(hashes), 4)


def distances(one: str, many: np.ndarray) -> np.ndarray:
    """Bits that differ between the hash `one` and each row of `many` (from as_words)."""
    if len(many) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.bitwise_count(many ^ as_words([one])[0]).sum(axis=1).astype(np.int64)
