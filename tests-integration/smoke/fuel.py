"""Smoke check of nebulae-fuel, importable under any name (argv[1]): pack a tiny dataset and read it back."""

import csv
import importlib
import os
import sys
import tempfile

import numpy as np
from PIL import Image

fuel = importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else "nebulae.fuel")

assert fuel.FuelGenerator is fuel.Generator
assert fuel.FIELD_SEP == '"' and fuel.CHAR_SEP == "," and fuel.FRAME_KEY == "_MAX_FRAMES"
depot = importlib.import_module(fuel.__name__ + ".depot")
farm = importlib.import_module(fuel.__name__ + ".farm")
assert depot.Tank is farm.Tank is fuel.Tank
with tempfile.TemporaryDirectory() as tmp:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (12 + i, 10, 3), dtype=np.uint8) for i in range(6)]
    with open(os.path.join(tmp, "labels.csv"), "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t")
        writer.writerow(["image", "label"])
        for i, img in enumerate(images):
            Image.fromarray(img).save(os.path.join(tmp, f"img_{i}.png"))
            writer.writerow([f"img_{i}.png", i])
    fg = fuel.FuelGenerator(tmp, "labels.csv", ["int64"])
    for enc, suffix in (("PNG", "hdf5"), ("RAW", "npz")):
        dst = os.path.join(tmp, f"out.{suffix}")
        assert fg.generate(dst, 8, 8, encode=enc, nworker=1, verbose=False) == [dst]
        with fuel.Tank(
            dst, {"image": "vuint8", "label": "int64"}, 3, shuffle=False, nworker=0, verbose=False
        ) as tank:
            assert len(tank) == 6 and tank.MPE == 2
            batch = tank.next()
        assert batch["image"].shape == (3, 8, 8, 3) and batch["label"].tolist() == [0, 1, 2]
        want = np.asarray(Image.fromarray(images[1]).resize((8, 8), Image.Resampling.LANCZOS))
        assert (batch["image"][1] == want).all()
    cbr = fuel.Comburant(fuel.Flip(fuel.VERTICAL), fuel.HWC2CHW())
    out = cbr(images[0])
    assert out.shape == (3, 12, 10) and out.dtype == np.float32
assert "torch" not in sys.modules
print("ok")
