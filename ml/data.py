"""HAM10000 metadata, the saved lesion-grouped split, and a PyTorch dataset over it."""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from ml.classes import class_index

ML_DIR = Path(__file__).resolve().parent
SPLIT_PATH = ML_DIR / "splits" / "ham10000_lesion_split.csv"


def default_data_dir() -> Path:
    """`../shared/data/ham10000` beside the checkout, or `$HAM10000_DIR`."""
    env = os.environ.get("HAM10000_DIR")
    if env:
        return Path(env)
    return ML_DIR.parent.parent / "shared" / "data" / "ham10000"


@dataclass(frozen=True)
class Record:
    image_id: str
    lesion_id: str
    dx: str


def read_metadata(data_dir: Path) -> list[Record]:
    with open(data_dir / "metadata.csv", newline="") as handle:
        return [Record(r["image_id"], r["lesion_id"], r["dx"]) for r in csv.DictReader(handle)]


def read_split(path: Path = SPLIT_PATH) -> dict[str, list[Record]]:
    """The committed split: {'train': [...], 'val': [...]}."""
    parts: dict[str, list[Record]] = {"train": [], "val": []}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            parts[row["split"]].append(Record(row["image_id"], row["lesion_id"], row["dx"]))
    return parts


def split_checksum(path: Path = SPLIT_PATH) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class LesionImages(Dataset):
    """Images held decoded in memory: HAM10000 at 200x150 is under 1 GB, and decoding every
    JPEG once instead of every epoch matters on a two-core machine."""

    def __init__(
        self,
        records: Sequence[Record],
        image_dir: Path,
        transform: Callable[[Image.Image], torch.Tensor],
    ) -> None:
        self.records = list(records)
        self.labels = [class_index(r.dx) for r in self.records]
        self.transform = transform
        self.images = []
        for record in self.records:
            with Image.open(image_dir / f"{record.image_id}.jpg") as image:
                self.images.append(image.convert("RGB"))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index]), self.labels[index]
