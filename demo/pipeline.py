"""The demo's data pipeline and model, at module level so that Tank workers and Multiverse ranks can import them."""

from __future__ import annotations

import numpy as np
import torch

from nebulae.astro import dock
from nebulae.fuel import depot

SPEC = {"image": "vuint8", "label": "int64"}

# Digits keep their meaning under small crops, turns and lighting changes; flips would not.
TRAIN_AUGMENT = depot.Comburant(
    depot.Crop((32, 32), area_ratio=(0.8, 1.0), aspect_ratio=(0.9, 1.1)),
    depot.Rotate(10),
    depot.Brighten(0.25),
    depot.Contrast(0.25),
    depot.HWC2CHW(),
)
DEV_AUGMENT = depot.Comburant(depot.HWC2CHW())


def fetcher(data, idx):
    """The brochure's fetcher: one decoded HWC uint8 image and its label."""
    ret = {}
    ret["image"] = data["image"][idx]
    ret["label"] = data["label"][idx].astype("int64")
    return ret


def train_prep(data):
    """Augment (one random draw per sample), then float32 CHW in [0, 1]."""
    data["image"] = TRAIN_AUGMENT(data["image"])
    return data


def dev_prep(data):
    """The brochure's prep for evaluation: channel-first float32, no augmentation."""
    data["image"] = DEV_AUGMENT(data["image"])
    return data


class DigitNet(dock.Craft):
    """Three conv blocks ('SAME' padding through autoPad), global pooling and a classifier."""

    def __init__(self, nclass: int = 10, size: int = 32, scope: str = "DIGITS"):
        super().__init__(scope)
        widths = [3, 32, 64, 128]
        self.blocks = torch.nn.ModuleList()
        for k in range(3):
            side = size // 2**k
            self.blocks.append(
                torch.nn.Sequential(
                    dock.Conv(widths[k], widths[k + 1], (3, 3), padding=dock.autoPad((side, side), (3, 3))),
                    dock.BN(widths[k + 1], dim=2),
                    dock.Relu(),
                    dock.MaxPool((2, 2)) if k < 2 else dock.Identity(),
                )
            )
        self.features = widths[-1]
        self.gap = dock.AvgPool((-1, -1))
        self.flat = dock.Reshape()
        self.drop = dock.Dropout(0.2)
        self.fc = dock.Dense(widths[-1], nclass)

    def run(self, x):
        for block in self.blocks:
            x = block(x)
        x = self.flat(self.gap(x), (-1, self.features))
        return self.fc(self.drop(x))


def batch_to_tensors(batch):
    """Tank batches are NumPy; ``coat`` puts them on the current engine's device."""
    images = dock.coat(np.ascontiguousarray(batch["image"]))
    labels = dock.coat(batch["label"])
    return images, labels
