"""A Multiverse universe that trains over a real nebulae-fuel Tank; every rank reports into a JSON file.

Used by test_multiverse_tank.py (spawn pickles the universe, so it lives at module level here).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nebulae.astro import dock
from nebulae.cockpit import CPU, Engine, Multiverse
from nebulae.fuel import Tank

EPOCHS = 2


def _prep(item: dict) -> dict:
    item["image"] = (item["image"].transpose(2, 0, 1) / 255.0).astype(np.float32)
    return item


class Probe(dock.Craft):
    def __init__(self, scope: str = "PROBE") -> None:
        super().__init__(scope)
        self.flat = dock.Reshape()
        self.fc = dock.Dense(3 * 8 * 8, 2)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(x, (-1, 3 * 8 * 8)))


@Multiverse.Executor
def _tagged(rank: int) -> str:
    return f"rank {rank}"


def universe(mv: Multiverse, data_path: str, out_dir: str) -> None:
    # Built before init() with its own random seed: only sync() (rank 0's seed) can align the ranks.
    tank = Tank(data_path, {"image": "vuint8", "label": "int64"}, 4, prep_fn=_prep, nworker=1, verbose=False)
    own_seed = tank.seed
    mv.init()
    Engine(device=CPU, verbose=False)
    torch.manual_seed(100 + mv.rank)  # different initial weights: sync must broadcast rank 0's
    net = Probe()
    net, tank = mv.sync(net, (tank,))
    initial = [p.detach().double().flatten().tolist() for p in net.parameters()]
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    seen: list[list[int]] = []
    first_pixels: list[list[float]] = []
    for _ in range(EPOCHS):
        rows: list[int] = []
        for _ in range(tank.MPE):
            batch = tank.next()
            rows += [int(label) for label in batch["label"]]
            first_pixels += batch["image"][:, :, 0, 0].tolist()
            loss = F.cross_entropy(net(dock.coat(batch["image"])), dock.coat(batch["label"] % 2))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seen.append(rows)
    report = {
        "rank": mv.rank,
        "own_seed": own_seed,
        "seed": tank.seed,
        "MPE": tank.MPE,
        "len": len(tank),
        "rows": seen,
        "pixels": first_pixels,
        "initial": initial,
        "params": [p.detach().double().flatten().tolist() for p in net.parameters()],
    }
    with mv.scope():  # the brochure's no-op parallel scope
        rank_plus_one = torch.tensor([float(mv.rank + 1)])
        report["sum"] = float(mv.reduce(rank_plus_one, aggregate=True))
        report["mean"] = float(mv.reduce(rank_plus_one))
    report["executor"] = _tagged(mv.rank)
    tank.close()
    Path(out_dir, f"rank{mv.rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    Multiverse(universe, int(sys.argv[3]))(sys.argv[1], sys.argv[2])
