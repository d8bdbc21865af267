"""The seven HAM10000 / ISIC 2018 Task 3 diagnostic classes, in the order the model emits them."""

from __future__ import annotations

# Order is part of the model's contract: index i of every probability vector is CLASSES[i].
CLASSES: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")

CLASS_NAMES: dict[str, str] = {
    "akiec": "Actinic keratosis / Bowen's disease",
    "bcc": "Basal cell carcinoma",
    "bkl": "Benign keratosis",
    "df": "Dermatofibroma",
    "mel": "Melanoma",
    "nv": "Melanocytic nevus",
    "vasc": "Vascular lesion",
}

# Malignant or pre-malignant classes, as the HAM10000 paper groups them.
MALIGNANT: frozenset[str] = frozenset({"mel", "bcc", "akiec"})

MELANOMA_INDEX: int = CLASSES.index("mel")


def class_index(code: str) -> int:
    """Index of a class code; raises ValueError with the valid codes for anything else."""
    try:
        return CLASSES.index(code)
    except ValueError:
        raise ValueError(f"unknown class {code!r}; expected one of {', '.join(CLASSES)}") from None
