"""A dock Craft and an astro optimizer craft saved and resumed through cockpit's TimeMachine; one coat/shell."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nebulae.astro import dock
from nebulae.cockpit import CPU, Engine, TimeMachine
from nebulae.kit import current_engine, set_current_engine


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


def test_engine_coat_and_dock_coat_agree():
    # both call kit's coat_to: the same dtype, device and leafness, and the same inputs refused
    previous = current_engine()
    engine = Engine(CPU, verbose=False)
    try:
        for datum in (3, 2.5, [1.0, 2.0], np.float64(0.5), np.arange(4, dtype=np.int16), torch.ones(2) * 2):
            ours, theirs = engine.coat(datum), dock.coat(datum)
            assert (ours.dtype, ours.device, ours.is_leaf) == (theirs.dtype, theirs.device, theirs.is_leaf)
            assert torch.equal(ours, theirs)
            assert np.array_equal(engine.shell(ours), dock.shell(theirs))
        for bad in ("text", np.array(["x"])):
            with pytest.raises(TypeError, match="coat"):
                engine.coat(bad)
            with pytest.raises(TypeError, match="coat"):
                dock.coat(bad)
    finally:
        set_current_engine(previous)


def test_astro_and_cockpit_reach_torch_internals_the_same_way():
    # each package keeps its own compat module (they import no sibling but kit); the copies must not drift
    import inspect

    from nebulae.astro import _compat as astro_compat
    from nebulae.cockpit import _compat as cockpit_compat

    assert astro_compat.TORCH_WRITTEN_AGAINST == cockpit_compat.TORCH_WRITTEN_AGAINST
    for name in ("compiled_original", "registered_child"):
        ours, theirs = getattr(cockpit_compat, name), getattr(astro_compat, name)
        assert inspect.getsource(ours) == inspect.getsource(theirs), f"_compat.{name} differs"
