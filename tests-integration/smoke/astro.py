"""Smoke check of nebulae-astro, run against an installed wheel or a vendored copy.

Usage: python astro.py <module name>   (e.g. nebulae.astro or vendored_astro)
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile

import numpy as np
import torch


def main(name: str) -> None:
    astro = importlib.import_module(name)
    dock = importlib.import_module(f"{name}.dock")
    assert dock.Craft is astro.Craft

    class Net(dock.Craft):
        def __init__(self) -> None:
            super().__init__("NET")
            self.conv = dock.Conv(1, 4, (3, 3), padding=astro.autoPad((6, 6), (3, 3)))
            self.bn = dock.BN(4, 2)
            self.pool = dock.AvgPool((-1, -1))
            self.flat = dock.Reshape()
            self.fc = dock.Dense(4, 2)

        def run(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.bn(self.conv(x)))
            self["features"] = h
            return self.fc(self.flat(self.pool(h), (-1, 4)))

    torch.manual_seed(0)
    net = Net()
    optz = dock.Adam(net, 0.01, warmup=2, lr_decay=dock.StepLR(5, 0.5))
    x = astro.coat(np.random.default_rng(0).standard_normal((8, 1, 6, 6)).astype(np.float32))
    y = astro.coat(np.arange(8) % 2)
    xent = dock.SftmXE(False)
    with astro.Rudder() as r:
        net.gear(r)
        first = None
        for _ in range(10):
            loss = xent(net(x), y)
            first = first if first is not None else float(astro.shell(loss))
            optz(loss)
    assert float(astro.shell(loss)) < first, (first, float(astro.shell(loss)))
    assert net["conv/"] is net.conv and net["features"].shape == (8, 4, 6, 6)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "optz.pt")
        torch.save(optz.state_dict(), path)
        resumed = dock.Adam(net, 0.01, warmup=2, lr_decay=dock.StepLR(5, 0.5))
        resumed.load_state_dict(torch.load(path, weights_only=True))
        assert resumed.lr == optz.lr and resumed.step_count == 10

    with astro.Nozzle() as flag:
        net.gear(flag)
        out = astro.shell(net(x))
    assert isinstance(out, np.ndarray) and out.shape == (8, 2)
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "nebulae.astro")
