"""The demo's raw data: a folder of real images and a labels.csv in the brochure's format."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class RawData:
    """Where the images live and the two label files (train, held-out) that list them."""

    image_dir: Path
    train_csv: Path
    dev_csv: Path
    nclass: int
    ntrain: int
    ndev: int


def _write_csv(path: Path, rows: list[tuple[str, int]]) -> None:
    # The brochure's file_list is tab separated with an `image  label` header.
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["image", "label"])
        writer.writerows(rows)
    os.replace(tmp, path)


def _split(rows: list[tuple[str, int]], held_out: float, seed: int) -> tuple[list, list]:
    """A stratified split: the same share of every class is held out."""
    rng = np.random.default_rng(seed)
    labels = np.array([label for _, label in rows])
    dev_idx: list[int] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        dev_idx.extend(members[: max(1, round(len(members) * held_out))].tolist())
    dev_set = set(dev_idx)
    train = [row for k, row in enumerate(rows) if k not in dev_set]
    dev = [row for k, row in enumerate(rows) if k in dev_set]
    return train, dev


def write_digits(out: Path, size: int = 32, subset: int | None = None, seed: int = 0) -> RawData:
    """Write scikit-learn's bundled handwritten digits as RGB JPEG files and the label files.

    The 8×8 scans (values 0..16) are upscaled to ``size``×``size`` with bicubic filtering, so the
    images are real handwriting rather than noise, and nothing is downloaded.
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    count = len(digits.images) if subset is None else min(subset, len(digits.images))
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(count):
        name = f"digit_{k:04d}.jpg"
        path = image_dir / name
        if not path.exists():
            gray = (digits.images[k] * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
            image = Image.fromarray(gray, "L").resize((size, size), Image.Resampling.BICUBIC).convert("RGB")
            tmp = path.with_name(f"{name}.tmp-{os.getpid()}")
            image.save(tmp, "JPEG", quality=95)
            os.replace(tmp, path)
        rows.append((name, int(digits.target[k])))
    _write_csv(out / "labels.csv", rows)
    return split_labels(image_dir, rows, out, seed=seed)


def read_labels(data_dir: Path, csv_file: Path) -> list[tuple[str, int]]:
    """Read a user's labels file in the brochure's format (header, image path, int label)."""
    text = csv_file.read_text(encoding="utf-8")
    delimiter = "\t" if text.splitlines()[0].count("\t") > text.splitlines()[0].count(",") else ","
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    header = next(reader)
    if len(header) < 2:
        raise ValueError(f"{csv_file}: expected a header 'image<TAB>label' (got {header})")
    rows = []
    for number, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            rows.append((row[0], int(row[1])))
        except (IndexError, ValueError):
            raise ValueError(
                f"row {number} of {csv_file.name}: expected an image path and an int label"
            ) from None
    if len(rows) < 20:
        raise ValueError(f"{csv_file}: only {len(rows)} labelled images; the demo needs at least 20")
    missing = [name for name, _ in rows if not (data_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} images listed in {csv_file.name} are not in {data_dir}: {missing[:5]}"
        )
    return rows


def split_labels(image_dir: Path, rows: list[tuple[str, int]], out: Path, seed: int = 0) -> RawData:
    """Split labelled rows into train.csv and dev.csv (20 % held out) under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    train, dev = _split(rows, 0.2, seed)
    _write_csv(out / "train.csv", train)
    _write_csv(out / "dev.csv", dev)
    nclass = max(label for _, label in rows) + 1
    return RawData(image_dir, out / "train.csv", out / "dev.csv", nclass, len(train), len(dev))
