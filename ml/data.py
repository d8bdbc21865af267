"""HAM10000 metadata, the saved lesion-grouped split, and a PyTorch dataset over it."""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from ml.classes import class_index
from ml.metadata import LesionMetadata, drop_fields, encode

ML_DIR = Path(__file__).resolve().parent
SPLIT_PATH = ML_DIR / "splits" / "ham10000_lesion_split.csv"
# The validation lesions halved: "select" chooses checkpoints, temperature and thresholds;
# "report" chooses nothing and gives the figures a model card states.
HALVES_PATH = ML_DIR / "splits" / "ham10000_val_halves.csv"


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


def read_val_halves(path: Path = HALVES_PATH) -> dict[str, list[Record]]:
    """The validation split in its two halves: {'select': [...], 'report': [...]}."""
    half_of: dict[str, str] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            half_of[row["image_id"]] = row["half"]
    halves: dict[str, list[Record]] = {"select": [], "report": []}
    for record in read_split()["val"]:
        halves[half_of[record.image_id]].append(record)
    return halves


def read_metadata_rows(data_dir: Path) -> dict[str, dict[str, str]]:
    """HAM10000's metadata.csv rows by image id (age, sex, localization, dataset, ...)."""
    with open(data_dir / "metadata.csv", newline="") as handle:
        return {row["image_id"]: row for row in csv.DictReader(handle)}


def split_checksum(path: Path = SPLIT_PATH) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class LesionImages(Dataset):
    """Images held decoded in memory: HAM10000 at 200x150 is under 1 GB, and decoding every
    JPEG once instead of every epoch matters on a two-core machine."""

    def __init__(
        self,
        records: Sequence[Record],
        image_dir: Path | Mapping[str, Path],
        transform: Callable[[Image.Image], torch.Tensor],
        metadata: Sequence[LesionMetadata] | None = None,
        metadata_dropout: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.records = list(records)
        self.metadata = list(metadata) if metadata is not None else None
        self.metadata_dropout = metadata_dropout
        self.generator = torch.Generator().manual_seed(seed)
        self.labels = [class_index(r.dx) for r in self.records]
        self.transform = transform
        self.images = []
        for record in self.records:
            # One folder, or (HAM10000 plus exports, ml.train --extra-data) a folder per image.
            folder = image_dir[record.image_id] if isinstance(image_dir, Mapping) else image_dir
            with Image.open(folder / f"{record.image_id}.jpg") as image:
                self.images.append(image.convert("RGB"))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple:
        """(image tensor, label), or (image tensor, metadata vector, label) when the dataset
        was given metadata; in training each field is dropped with `metadata_dropout`."""
        image = self.transform(self.images[index])
        if self.metadata is None:
            return image, self.labels[index]
        record = drop_fields(self.metadata[index], self.metadata_dropout, self.generator)
        return image, encode(record), self.labels[index]


def extra_split(records: Sequence[Record], val_share: int = 7) -> dict[str, list[Record]]:
    """A labelled export (`manage.py export_training_set`) split by lesion, like HAM10000's:
    a lesion is validation when the first bytes of sha256(lesion_id) fall in one of
    `val_share` buckets. It looks at nothing but the id, so a case stays on its side as the
    export grows, and no lesion's images are on both sides."""
    parts: dict[str, list[Record]] = {"train": [], "val": []}
    for record in records:
        digest = hashlib.sha256(record.lesion_id.encode()).digest()
        side = "val" if int.from_bytes(digest[:4], "big") % val_share == 0 else "train"
        parts[side].append(record)
    return parts
