"""A dock Craft and an astro optimizer craft saved and resumed through cockpit's TimeMachine."""

from __future__ import annotations

import torch
from torch import nn

from nebulae.astro import dock
from nebulae.cockpit import TimeMachine


class Regressor(dock.Craft):
    def __init__(self, scope: str = "reg") -> None:
        super().__init__(scope)
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _setup(seed: int) -> tuple[Regressor, dock.Adam]:
    torch.manual_seed(seed)
    net = Regressor()
    return net, dock.Adam(net, 0.05, warmup=3, lr_decay=dock.StepLR(4, 0.5))


def _steps(net: Regressor, optz: dock.Adam, n: int) -> list[float]:
    data = torch.Generator().manual_seed(1)
    x = torch.randn(32, 4, generator=data)
    y = x.sum(dim=1, keepdim=True)
    losses = []
    for _ in range(n):
        loss = nn.functional.mse_loss(net(x), y)
        optz(loss)
        losses.append(loss.item())
    return losses


def test_optimizer_craft_resumes_exactly_where_it_stopped(tmp_path):
    net, optz = _setup(seed=0)
    _steps(net, optz, 5)
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    path = tm.drop(net, optz=optz, meta={"epoch": 5})
    assert path.endswith("reg-1.pth")
    expected = _steps(net, optz, 4)  # the run continued without interruption

    resumed, resumed_optz = _setup(seed=123)  # different weights and a fresh optimizer
    assert tm.to(resumed, optz=resumed_optz, frozen=True) == path
    assert tm.meta == {"epoch": 5}
    assert resumed_optz.step_count == 5
    assert _steps(resumed, resumed_optz, 4) == expected
    assert resumed_optz.lr == optz.lr
