"""Smoke check of nebulae-cockpit as installed from its wheel, or as a vendored copy under another name.

Usage: python cockpit.py nebulae.cockpit   (or the vendored module name). Prints "ok".
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile

import torch


def main(module_name: str) -> None:
    cockpit = importlib.import_module(module_name)
    assert (cockpit.CPU, cockpit.GPU, int(cockpit.DYNAMIC), int(cockpit.STATIC), int(cockpit.FIXED)) == (
        "CPU",
        "GPU",
        20,
        21,
        22,
    )

    engine = cockpit.Engine(cockpit.CPU, verbose=False)
    assert engine.chip == [torch.device("cpu")]
    assert engine.shell(engine.coat([1.0, 2.0]).sum()) == 3.0

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    net.scope = "smoke"
    with tempfile.TemporaryDirectory() as tmp:
        tm = cockpit.TimeMachine(ckpt_path=tmp, save_path=tmp, max_anchors=2, verbose=False)
        paths = [tm.drop(net, meta={"epoch": epoch}) for epoch in range(3)]
        assert [os.path.basename(p) for p in paths] == ["smoke-1.pth", "smoke-2.pth", "smoke-3.pth"]
        assert sorted(os.listdir(tmp)) == ["smoke-2.pth", "smoke-3.pth"]
        other = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
        other.scope = "smoke"
        assert tm.to(other, frozen=True) == paths[-1]
        assert tm.meta == {"epoch": 2}
        assert all(torch.equal(a, b) for a, b in zip(net.parameters(), other.parameters(), strict=True))

    mv = cockpit.Multiverse(_universe, 2)
    loss = torch.tensor(0.5)
    assert mv.reduce(loss) is loss  # no process group: unchanged
    with mv.scope():
        assert mv.Executor(_universe).__name__ == "_universe"
    print("ok")


def _universe(mv: object) -> None:
    return None


if __name__ == "__main__":
    main(sys.argv[1])
