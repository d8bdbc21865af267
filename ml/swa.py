"""Stochastic weight averaging over a run's last epochs, as a checkpoint `ml.export_v2` reads.

    python -m ml.swa --run runs/exp/e6 --epochs 4,5,6 [--bn-images 2048]

`ml.train --snapshots` keeps each epoch's raw weights (`epoch_N.pt`). Averaging the weights of
the last few epochs of a cosine schedule lands nearer the middle of the flat region the
optimiser wandered in than any one epoch does (Izmailov et al., 2018), at no training cost.
Batch-norm statistics of an average are not the average of the statistics, so they are
recomputed with one pass over training images (plain preprocessing, no augmentation).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from ml import metadata as meta
from ml.data import LesionImages, default_data_dir, read_metadata_rows, read_split
from ml.export import load_checkpoint
from ml.model import LesionNet
from ml.preprocessing import PreprocessConfig, eval_transform


def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating tensors; integer buffers (BN's batch counters) from
    the last state."""
    if not states:
        raise ValueError("no weights to average")
    averaged = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            averaged[key] = torch.stack([s[key].float() for s in states]).mean(0).to(last.dtype)
        else:
            averaged[key] = last.clone()
    return averaged


@torch.no_grad()
def recompute_batch_norm(model: LesionNet, loader: DataLoader) -> None:
    """Reset every BN layer's running statistics and re-estimate them as a cumulative mean
    over `loader` (momentum None), the model otherwise in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.eval()
    for norm in norms:
        norm.train()
    for images, metadata, _ in loader:
        model(images.to(memory_format=torch.channels_last), metadata)
    model.eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a run folder of ml.train")
    parser.add_argument("--epochs", required=True, help="comma-separated epoch numbers")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--bn-images", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="default: RUN/swa.pt")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    epochs = [int(e) for e in args.epochs.split(",") if e]
    reference = load_checkpoint(args.run / "best.pt")
    states = [
        torch.load(args.run / f"epoch_{e}.pt", map_location="cpu", weights_only=True)["model"]
        for e in epochs
    ]
    model = LesionNet(reference["architecture"], use_metadata=bool(reference["metadata"]))
    model.load_state_dict(average_state_dicts(states), strict=True)
    model = model.to(memory_format=torch.channels_last)

    train = read_split()["train"]
    rows = read_metadata_rows(args.data)
    generator = torch.Generator().manual_seed(0)
    chosen = torch.randperm(len(train), generator=generator)[: args.bn_images].tolist()
    records = [train[i] for i in chosen]
    dataset = LesionImages(
        records,
        args.data / "images",
        eval_transform(PreprocessConfig(input_size=int(reference["input_size"]))),
        metadata=[meta.from_row(rows[r.image_id]) for r in records],
    )
    recompute_batch_norm(model, DataLoader(Subset(dataset, range(len(dataset))), 64))

    out = args.out or args.run / "swa.pt"
    checkpoint = dict(reference)
    checkpoint.update(
        model=model.state_dict(),
        epoch=max(epochs),
        weights_from=f"swa of epochs {','.join(map(str, epochs))}",
        select_balanced_accuracy=None,
        select_auc=None,
    )
    torch.save(checkpoint, out)
    print(json.dumps({"out": str(out), "epochs": epochs, "bn_images": len(records)}))


if __name__ == "__main__":
    main()
