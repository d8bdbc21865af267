"""What a clinic records about a lesion (age, sex, anatomic site), as the classifier's input.

Each of the three may be missing, and the encoding says so explicitly (a missing flag per
field) rather than imputing a value: a model trained with fields randomly dropped (metadata
dropout) then learns what to do without them, and a prediction can report which were used.

Sites are encoded in six coarse groups, not HAM10000's fifteen names: other hospitals label
sites differently (ISIC's "anterior torso" vs HAM10000's "chest"/"abdomen"/"trunk"), and a
group both vocabularies map onto is what carries over to images from elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

SITE_GROUPS: tuple[str, ...] = (
    "head/neck",
    "trunk",
    "upper extremity",
    "lower extremity",
    "palms/soles",
    "oral/genital",
)

# HAM10000's `localization` values (also the portal's anatomic sites) and ISIC's
# `anatom_site_general` values, each to its group. "unknown" is missing.
SITE_TO_GROUP: dict[str, str] = {
    "face": "head/neck",
    "scalp": "head/neck",
    "ear": "head/neck",
    "neck": "head/neck",
    "head/neck": "head/neck",
    "trunk": "trunk",
    "back": "trunk",
    "chest": "trunk",
    "abdomen": "trunk",
    "anterior torso": "trunk",
    "posterior torso": "trunk",
    "lateral torso": "trunk",
    "torso": "trunk",
    "upper extremity": "upper extremity",
    "hand": "upper extremity",
    "lower extremity": "lower extremity",
    "foot": "lower extremity",
    "acral": "palms/soles",
    "palms/soles": "palms/soles",
    "genital": "oral/genital",
    "oral/genital": "oral/genital",
}
SEXES: tuple[str, ...] = ("male", "female")
AGE_SCALE: float = 100.0
# age (scaled), age missing, male, female, sex missing, six site groups, site missing
N_FEATURES: int = 2 + len(SEXES) + 1 + len(SITE_GROUPS) + 1
FIELDS: tuple[str, ...] = ("age", "sex", "site")


@dataclass(frozen=True)
class LesionMetadata:
    """Age in years, sex ('male'/'female') and a site group; None where not known."""

    age: float | None = None
    sex: str | None = None
    site: str | None = None

    @property
    def present(self) -> tuple[str, ...]:
        """Names of the fields that are known, in FIELDS order."""
        return tuple(name for name in FIELDS if getattr(self, name) is not None)


def _age(value: object) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        age = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(age) or not 0 <= age <= 120:
        return None
    return age


def site_group(site: object) -> str | None:
    """The group of a HAM10000 or ISIC site name; None for unknown or unrecognised."""
    if not isinstance(site, str):
        return None
    return SITE_TO_GROUP.get(site.strip().lower())


def parse(age: object = None, sex: object = None, site: object = None) -> LesionMetadata:
    """Metadata from loose values (CSV strings, form or model fields): anything that is not
    a plausible age, a known sex or a recognised site counts as missing."""
    sex_value = sex.strip().lower() if isinstance(sex, str) else None
    return LesionMetadata(
        age=_age(age),
        sex=sex_value if sex_value in SEXES else None,
        site=site_group(site),
    )


def from_row(row: Mapping[str, object]) -> LesionMetadata:
    """Metadata from a HAM10000-style row: `age`, `sex`, `localization` (or ISIC's
    `anatom_site_general`)."""
    site = row.get("localization") or row.get("anatom_site_general")
    return parse(row.get("age"), row.get("sex"), site)


def encode_array(meta: LesionMetadata | None) -> np.ndarray:
    """The fixed-length float32 vector the network's metadata branch reads, without torch
    (an ONNX runtime's worker never imports it)."""
    meta = meta or LesionMetadata()
    vector = np.zeros(N_FEATURES, dtype=np.float32)
    if meta.age is None:
        vector[1] = 1.0
    else:
        vector[0] = meta.age / AGE_SCALE
    offset = 2
    if meta.sex is None:
        vector[offset + len(SEXES)] = 1.0
    else:
        vector[offset + SEXES.index(meta.sex)] = 1.0
    offset += len(SEXES) + 1
    if meta.site is None:
        vector[offset + len(SITE_GROUPS)] = 1.0
    else:
        vector[offset + SITE_GROUPS.index(meta.site)] = 1.0
    return vector


def encode(meta: LesionMetadata | None) -> torch.Tensor:
    """`encode_array` as the tensor the PyTorch network reads."""
    import torch

    return torch.from_numpy(encode_array(meta))


def drop_fields(meta: LesionMetadata, p: float, generator: torch.Generator) -> LesionMetadata:
    """Each field independently forgotten with probability p: training with this teaches
    the network to predict from whatever part of the record a clinic filled in."""
    import torch

    if p <= 0:
        return meta
    keep = (torch.rand(3, generator=generator) >= p).tolist()
    return LesionMetadata(
        age=meta.age if keep[0] else None,
        sex=meta.sex if keep[1] else None,
        site=meta.site if keep[2] else None,
    )
