"""Fine-tune EfficientNet-Lite0 on the lesion-grouped HAM10000 split.

    python -m ml.train --out runs/lite0 [--epochs 14] [--time-budget-min 95] [--resume]

The learning-rate schedule (warm-up, then cosine) runs on whichever ends first, the epoch
count or the wall-clock budget, so a run on a busy two-core machine still finishes its decay
instead of stopping at a high learning rate. Each epoch writes `last.pt` (to resume) and,
when validation balanced accuracy improves, `best.pt`; `metrics.jsonl` logs every epoch.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score
from timm.utils import ModelEmaV3
from torch.utils.data import DataLoader, WeightedRandomSampler
from tqdm import tqdm

from ml.classes import CLASSES
from ml.data import LesionImages, default_data_dir, read_split, split_checksum
from ml.model import build_model
from ml.preprocessing import PreprocessConfig, eval_transform, train_transform


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def class_balance(labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample sampling weights and per-class loss weights, each the square root of the
    inverse class frequency: together they give every class equal weight (what balanced
    accuracy rewards) without repeating the 98 dermatofibroma images sixty times an epoch."""
    counts = Counter(labels)
    n, k = len(labels), len(CLASSES)
    inv_sqrt = torch.tensor([math.sqrt(n / (k * counts[c])) for c in range(k)])
    sample_weights = inv_sqrt[torch.tensor(labels)]
    loss_weights = inv_sqrt / inv_sqrt.mean()
    return sample_weights, loss_weights


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, loader: DataLoader) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    logits, labels = [], []
    for images, targets in loader:
        logits.append(model(images.to(memory_format=torch.channels_last)).float())
        labels.append(targets)
    return torch.cat(logits).numpy(), torch.cat(labels).numpy()


def lr_at(progress: float, base_lr: float, warmup: float = 0.04, floor: float = 0.01) -> float:
    if progress < warmup:
        return base_lr * max(progress / warmup, 0.01)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / (1 - warmup))))
    return base_lr * (floor + (1 - floor) * cosine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path, default=Path("runs/lite0"))
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--time-budget-min", type=float, default=110.0)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--weight-decay", type=float, default=0.02)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    args = parser.parse_args()

    seed_everything(args.seed)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    config = PreprocessConfig(input_size=args.size)
    split = read_split()
    image_dir = args.data / "images"
    train_set = LesionImages(split["train"], image_dir, train_transform(config))
    val_set = LesionImages(split["val"], image_dir, eval_transform(config))
    sample_weights, loss_weights = class_balance(train_set.labels)
    generator = torch.Generator().manual_seed(args.seed)
    sampler = WeightedRandomSampler(sample_weights, len(train_set), generator=generator)
    loader_args = {"num_workers": args.workers, "persistent_workers": args.workers > 0}
    train_loader = DataLoader(
        train_set, args.batch_size, sampler=sampler, drop_last=True, **loader_args
    )
    val_loader = DataLoader(val_set, 64, shuffle=False, **loader_args)

    model = build_model(pretrained=True)
    ema = ModelEmaV3(model, decay=0.998, use_warmup=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    criterion = torch.nn.CrossEntropyLoss(weight=loss_weights, label_smoothing=0.1)
    steps_per_epoch = len(train_loader)
    total_steps = steps_per_epoch * args.epochs
    budget_s = args.time_budget_min * 60
    state = {"epoch": 0, "step": 0, "elapsed": 0.0, "best": -1.0, "stale": 0}

    last_path, best_path = args.out / "last.pt", args.out / "best.pt"
    if args.resume and last_path.exists():
        checkpoint = torch.load(last_path, map_location="cpu", weights_only=False)
        model.load_state_dict(checkpoint["model"])
        ema.load_state_dict(checkpoint["ema"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        state = checkpoint["state"]
        torch.set_rng_state(checkpoint["rng"])
        print(f"resumed after epoch {state['epoch']} ({state['elapsed'] / 60:.1f} min trained)")

    progress = max(state["step"] / total_steps, state["elapsed"] / budget_s)
    while progress < 1.0 and state["stale"] < args.patience:
        model.train()
        started = time.monotonic()
        bar = tqdm(train_loader, desc=f"epoch {state['epoch'] + 1}", unit="batch")
        running = 0.0
        for i, (images, targets) in enumerate(bar):
            elapsed = state["elapsed"] + time.monotonic() - started
            progress = max(state["step"] / total_steps, elapsed / budget_s)
            if progress >= 1.0:
                break
            for group in optimizer.param_groups:
                group["lr"] = lr_at(progress, args.lr)
            loss = criterion(model(images.to(memory_format=torch.channels_last)), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            ema.update(model, step=state["step"])
            state["step"] += 1
            running = 0.98 * running + 0.02 * loss.item() if i else loss.item()
            bar.set_postfix(loss=f"{running:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
        state["elapsed"] += time.monotonic() - started
        progress = max(state["step"] / total_steps, state["elapsed"] / budget_s)
        if i == 0 and progress >= 1.0:
            break  # the schedule ended with the previous epoch: nothing new to validate
        state["epoch"] += 1

        scores = {}
        for name, net in (("model", model), ("ema", ema.module)):
            logits, labels = predict_logits(net, val_loader)
            scores[name] = balanced_accuracy_score(labels, logits.argmax(1))
        winner = max(scores, key=scores.get)
        record = {
            "epoch": state["epoch"],
            "step": state["step"],
            "minutes": round(state["elapsed"] / 60, 2),
            "train_loss": round(running, 4),
            "lr": optimizer.param_groups[0]["lr"],
            "val_balanced_accuracy": {k: round(v, 4) for k, v in scores.items()},
        }
        print(json.dumps(record), flush=True)
        with open(args.out / "metrics.jsonl", "a") as log:
            log.write(json.dumps(record) + "\n")
        if scores[winner] > state["best"]:
            state["best"], state["stale"] = scores[winner], 0
            weights = (model if winner == "model" else ema.module).state_dict()
            torch.save(
                {
                    "model": weights,
                    "epoch": state["epoch"],
                    "weights_from": winner,
                    "val_balanced_accuracy": scores[winner],
                    "input_size": args.size,
                    "split_sha256": split_checksum(),
                    "args": {k: str(v) for k, v in vars(args).items()},
                },
                best_path,
            )
        else:
            state["stale"] += 1
        torch.save(
            {
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": optimizer.state_dict(),
                "state": state,
                "rng": torch.get_rng_state(),
            },
            last_path,
        )
    print(f"done: best validation balanced accuracy {state['best']:.4f} -> {best_path}")


if __name__ == "__main__":
    main()
